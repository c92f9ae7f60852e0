"""Building captures for tests: Hubble lines, ends, Log Analytics rows, and the shapes tools store them in."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from zerotrust.mockrun import PROJECT_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "observed"
HUBBLE = FIXTURES / "dev-hubble.jsonl"
ROWS = FIXTURES / "dev-container-network-logs.json"
UPSTREAM = FIXTURES / "upstream-lines.jsonl"
SHOP = PROJECT_DIR / "examples" / "Pulumi.shop.yaml"
WORLD = {"identity": 2, "labels": ["reserved:world"]}
HOST = {"identity": 1, "labels": ["reserved:host"]}


def upstream(line: int) -> dict[str, Any]:
    """One of the verbatim upstream records (1-based line of ``upstream-lines.jsonl``)."""
    return json.loads(UPSTREAM.read_text().splitlines()[line - 1])


def flow(
    src: dict, dst: dict, dst_ip: str, port: int, *, sport: int = 40000, proto: str = "TCP", src_ip: str = "10.244.0.5", **extra
) -> dict[str, Any]:
    l4 = {proto: {"source_port": sport, "destination_port": port, **({"flags": {"SYN": True}} if proto == "TCP" else {})}}
    return {"time": "2026-11-20T09:00:00Z", "verdict": "FORWARDED", "IP": {"source": src_ip, "destination": dst_ip},
            "l4": l4, "source": src, "destination": dst, "is_reply": False, **extra}


def flow_line(src: dict, dst: dict, dst_ip: str, port: int, **kw) -> str:
    return json.dumps({"flow": flow(src, dst, dst_ip, port, **kw)})


def pod(namespace: str, **labels: str) -> dict:
    return {"namespace": namespace, "labels": [f"k8s:{k}={v}" for k, v in labels.items()]}


def write(tmp_path: Path, *lines: str, name: str = "flows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def by_ends(obs) -> dict[tuple[str, str, int, str], int]:
    return {(c.src.display, c.dst.display, c.port, c.protocol): c.seen for c in obs.connections.values()}


_SNAKE = re.compile(r"_([a-z])")


def camel(value: Any) -> Any:
    """A record with protojson's camelCase names, as ``protojson.Marshal`` without ``UseProtoNames`` writes it."""
    if isinstance(value, dict):
        return {_SNAKE.sub(lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def la_row(src_ns: str, src_wl: str, dst_ns: str, dst_wl: str, port: int, **extra: Any) -> dict[str, Any]:
    """A ContainerNetworkLogs row with the table's documented columns."""
    row = {
        "TimeGenerated": "2026-11-20T09:00:30Z", "Verdict": "FORWARDED", "Reply": False,
        "SourceNamespace": src_ns, "SourceWorkloads": [{"name": src_wl, "kind": "Deployment"}] if src_wl else [],
        "DestinationNamespace": dst_ns, "DestinationWorkloads": [{"name": dst_wl, "kind": "Deployment"}] if dst_wl else [],
        "Layer4": {"TCP": {"destination_port": port}}, "IngressFlowCount": 1, "EgressFlowCount": 1, "UnknownDirectionFlowCount": 0,
    }
    return row | extra


def az_json(rows: list[dict[str, Any]]) -> str:
    """What ``az monitor log-analytics query -o json`` prints: every value through Python's ``str()``,
    dynamic columns as JSON text."""
    return json.dumps([{k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in r.items()} for r in rows])


def api_tables(rows: list[dict[str, Any]], indent: int | None = 1) -> str:
    """The Log Analytics query API's JSON: one table with columns and rows (dynamic columns as JSON text)."""
    columns = sorted({k for r in rows for k in r})
    table = {
        "name": "PrimaryResult",
        "columns": [{"name": c, "type": "dynamic" if any(isinstance(r.get(c), (dict, list)) for r in rows) else "string"} for c in columns],
        "rows": [[json.dumps(r[c]) if isinstance(r.get(c), (dict, list)) else r.get(c) for c in columns] for r in rows],
    }
    return json.dumps({"tables": [table]}, indent=indent)


def replay_config(config: dict, *captures: Path, others: tuple[dict, ...] = ()):
    """(config, replay report) on the pure core: the stack's rendered policies (and ``others``, policies
    already in the cluster), no mock engine."""
    from policies.analysis import matrix as mx
    from policies import observed as observed_
    from policies.config import load_config
    from policies.observed import replay as replay_
    from policies.render import render

    cfg = load_config(config)
    objects = render(cfg).all()
    policies = [o for o in objects if o["apiVersion"].startswith("cilium.io/")]
    return cfg, replay_.replay(cfg, policies + list(others), mx.workload_pods(cfg, objects), observed_.read(list(captures)), cfg.cilium_version)


def stack_config(stack_file: Path) -> dict:
    import yaml

    return yaml.safe_load(stack_file.read_text())["config"]


DEV = PROJECT_DIR / "Pulumi.dev.yaml"


def guardrail_report(config: dict, stack: str = "shop"):
    """The guardrails on a config's rendered objects and its cluster, as CrossGuard would see them (no mock engine)."""
    import datetime
    import re as re_

    from components.aks_cluster import cluster_args
    from policies import guardrails as g
    from policies.config import load_config
    from policies.render import render

    acronyms = {"enableAzureRbac": "enableAzureRBAC", "authorizedIpRanges": "authorizedIPRanges", "adminGroupObjectIds": "adminGroupObjectIDs",
                "tenantId": "tenantID", "dnsServiceIp": "dnsServiceIP"}  # the SDK's own names for ARM's properties

    def camel_keys(value: Any) -> Any:
        if isinstance(value, dict):
            out = {re_.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel_keys(v) for k, v in value.items()}
            return {acronyms.get(k, k): v for k, v in out.items()}
        if isinstance(value, list):
            return [camel_keys(v) for v in value]
        return value

    cfg = load_config(config)
    resources = [g.Resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["metadata"]["name"], o) for o in render(cfg).all()]
    if cfg.cluster is not None:
        resources.append(g.Resource(g.MANAGED_CLUSTER, cfg.cluster.name, camel_keys(cluster_args(cfg.cluster))))
    return g.evaluate(resources, g.default_levels(), g.Waivers(stack=stack, today=datetime.date(2026, 12, 1)))

"""``learn``: proposing the config that allows observed traffic, and the round trip through ``plan --observed``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import learn
from policies import matrix as mx
from policies import observed as observed_
from policies import replay as replay_
from policies.config import load_config
from policies.render import render
from policies.config import PROJECT
from policies.config.outside_names import name_matches
from tests.test_observed import HUBBLE, ROWS, SHOP, WORLD, flow_line, pod, write
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan


def learned(stack: str, stack_file: Path | None, *captures: Path) -> tuple[learn.Proposal, dict]:
    plan = make_plan(stack, stack_file, observed=list(captures))
    return learn.propose(plan.config, plan.observed), plan.stack.config


def replay_after_applying(tmp_path: Path, stack: str, stack_file: Path | None, *captures: Path):
    proposal, config = learned(stack, stack_file, *captures)
    applied = tmp_path / f"Pulumi.{stack}-learned.yaml"
    applied.write_text(yaml.safe_dump({"config": learn.apply(config, proposal)}))
    return proposal, make_plan(stack, applied, observed=list(captures))


def mixed_dev_capture(tmp_path: Path) -> Path:
    frontend = pod("frontend", app="frontend")
    return write(
        tmp_path,
        flow_line(pod("monitoring", app="prometheus"), pod("backend", app="backend"), "10.0.0.6", 80, sport=1),
        flow_line(frontend, {"identity": 7, "labels": ["reserved:kube-apiserver"]}, "10.0.0.1", 443, sport=2),
        flow_line(frontend, WORLD, "52.1.2.3", 8443, sport=3),
        flow_line(pod("frontend", app="debug"), pod("backend", app="backend"), "10.0.0.6", 80, sport=4),
    )


def test_learning_then_replaying_the_same_capture_drops_nothing_on_the_dev_stack(tmp_path):
    proposal, plan = replay_after_applying(tmp_path, "dev", None, HUBBLE, ROWS, mixed_dev_capture(tmp_path))
    assert proposal.flows and proposal.peers
    r = plan.observed
    assert [(d.src, d.dst) for d in (*r.would_drop, *r.undecided)] == [("frontend/app=debug", "backend")]  # the unknown pod only
    assert r.unknown == ("frontend/app=debug",)


def test_learning_then_replaying_the_same_capture_drops_nothing_on_the_shop(tmp_path):
    payments, web = pod("shop-core", app="payments"), pod("shop-web", app="web")
    capture = write(
        tmp_path,
        flow_line(payments, WORLD, "203.0.113.9", 443, sport=1, destination_names=["hooks.example.org"]),
        flow_line(pod("shop-core", app="orders"), WORLD, "192.0.2.44", 5432, sport=2),
        flow_line(pod("ops", **{"app.kubernetes.io/name": "grafana"}), web, "10.0.0.8", 8080, sport=3),
    )
    proposal, plan = replay_after_applying(tmp_path, "shop", SHOP, capture)
    assert {"from": "payments", "toFqdns": ["hooks.example.org"], "port": 443, "protocol": "TCP"} in [f.flow for f in proposal.flows]
    assert proposal.peers["ops-grafana"] == {"namespace": "ops", "labels": {"app.kubernetes.io/name": "grafana"}}
    assert plan.observed.would_drop == ()
    assert plan.matrix.ok and plan.guardrails.ok


def test_the_proposal_names_what_each_new_end_is(tmp_path):
    proposal, _ = learned("dev", None, HUBBLE, mixed_dev_capture(tmp_path))
    assert proposal.peers == {
        "addr-20-50-2-40": {"cidrs": ["20.50.2.40/32"]},
        "monitoring-prometheus": {"namespace": "monitoring", "labels": {"app": "prometheus"}},
        "kube-apiserver": {"entity": "kube-apiserver"},
        "addr-52-1-2-3": {"cidrs": ["52.1.2.3/32"]},
    }
    flows = [f.flow for f in proposal.flows]
    assert {"from": "monitoring-prometheus", "to": "backend", "port": 80, "protocol": "TCP"} in flows
    assert {"from": "frontend", "to": "kube-apiserver", "port": 443, "protocol": "TCP"} in flows


def test_outside_names_become_an_address_peer_with_a_note_where_the_acns_level_does_not_allow_fqdn_rules():
    proposal, _ = learned("dev", None, HUBBLE)
    assert [f.flow for f in proposal.flows] == [{"from": "frontend", "to": "addr-20-50-2-40", "port": 443, "protocol": "TCP"}]
    assert any("api.example.com" in n and "security: fqdn" in n for n in proposal.notes)


def test_an_address_in_a_peers_except_range_is_never_proposed(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="payments"), WORLD, "198.51.100.200", 443))
    proposal, _ = learned("shop", SHOP, capture)
    assert proposal.empty
    assert proposal.notes == ["198.51.100.200 is in the except ranges of peer card-processor: excluded there on purpose, not proposed"]


def test_a_name_a_declared_toFqdns_flow_already_covers_is_not_proposed_again(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="payments"), WORLD, "54.1.1.1", 443, destination_names=["api.stripe.com."]))
    proposal, _ = learned("shop", SHOP, capture)
    assert proposal.empty and proposal.notes == []


def test_traffic_from_the_internet_to_a_workload_without_a_load_balancer_is_a_note_not_a_flow(tmp_path):
    capture = write(tmp_path, flow_line(WORLD, pod("shop-core", app="api"), "10.0.0.9", 8080, src_ip="52.9.9.9"))
    proposal, _ = learned("shop", SHOP, capture)
    assert proposal.flows == []
    assert proposal.notes == [
        f"world 52.9.9.9 -> api:8080/TCP: set {PROJECT}:workloads.api.expose: loadBalancer to take traffic from the internet"
    ]


def test_clients_on_the_internet_count_as_the_world_entity_peer_and_a_private_address_gets_its_own_peer(tmp_path):
    edge, web = pod("shop-edge", app="edge"), pod("shop-web", app="web")
    capture = write(
        tmp_path,
        # internet -> edge:8080 is declared through the shop's `internet` peer (entity: world)
        *(flow_line(WORLD, edge, "10.0.0.9", 8080, src_ip=f"52.9.9.{i}", sport=i) for i in range(1, 4)),
        flow_line(WORLD, web, "10.0.0.8", 8080, src_ip="10.200.0.4", sport=9),  # a VM in a peered network
    )
    proposal, _ = learned("shop", SHOP, capture)
    assert proposal.peers == {"addr-10-200-0-4": {"cidrs": ["10.200.0.4/32"]}}
    assert [f.flow for f in proposal.flows] == [{"from": "addr-10-200-0-4", "to": "web", "port": 8080, "protocol": "TCP"}]


def test_a_port_the_workload_does_not_serve_is_a_note_not_a_flow(tmp_path):
    capture = write(tmp_path, flow_line(pod("frontend", app="frontend"), pod("backend", app="backend"), "10.0.0.6", 9090))
    proposal, _ = learned("dev", None, capture)
    assert proposal.flows == [] and proposal.notes == ["frontend -> backend:9090/TCP: backend does not serve 9090/TCP; add it to its ports"]


def test_the_yaml_output_is_a_stack_file_fragment_with_the_stack_files_keys(capsys):
    assert main(["learn", "--stack", "dev", "--flows", str(HUBBLE)]) == 0
    fragment = yaml.safe_load(capsys.readouterr().out)
    assert set(fragment) == {f"{PROJECT}:peers", f"{PROJECT}:flows"}
    assert fragment[f"{PROJECT}:flows"] == [{"from": "frontend", "to": "addr-20-50-2-40", "port": 443, "protocol": "TCP"}]


def test_the_json_output_carries_counts_and_first_and_last_seen(capsys):
    assert main(["learn", "--stack", "dev", "--format", "json", "--flows", str(HUBBLE)]) == 0
    (flow,) = json.loads(capsys.readouterr().out)["flows"]
    assert flow["count"] == 1 and flow["firstSeen"] == flow["lastSeen"] == "2026-11-20T09:01:00.000000000Z"


def test_learn_with_a_missing_file_is_one_error_line(tmp_path, capsys):
    assert main(["learn", "--stack", "dev", "--flows", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: --flows {tmp_path / 'none.jsonl'}: no such file"]


@pytest.mark.parametrize(
    "pattern, name, matches",
    [
        ("api.stripe.com", "API.Stripe.com.", True),
        ("api.stripe.com", "x.api.stripe.com", False),
        ("*.example.org", "hooks.example.org", True),
        ("*.example.org", "a.b.example.org", False),
        ("*.example.org", "example.org", False),
    ],
)
def test_a_toFqdns_entry_admits_names_as_cilium_matches_them(pattern, name, matches):
    assert name_matches(pattern, name) is matches


# -- the round trip as a property, on the pure core (no mock engine: fast enough for many examples) --

SHOP_CONFIG = yaml.safe_load(SHOP.read_text())["config"]
SHOP_PODS = [
    pod(w["namespace"], app=name) for name, w in SHOP_CONFIG[f"{PROJECT}:workloads"].items()
] + [pod("ops", app="grafana"), pod("shop-core", app="batch-job"), pod("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})]
OUTSIDE = [
    ("52.9.9.1", []), ("203.0.113.5", []), ("198.51.100.7", []), ("198.51.100.200", []), ("10.200.0.4", []),
    ("54.1.1.1", ["api.stripe.com"]), ("34.2.2.2", ["hooks.example.org"]),
]


def replay_config(config: dict, capture: Path):
    cfg = load_config(config)
    objects = render(cfg).all()
    policies = [o for o in objects if o["apiVersion"].startswith("cilium.io/")]
    return cfg, replay_.replay(cfg, policies, mx.workloads_from_manifests(objects), observed_.read([capture]), cfg.cilium_version)


@st.composite
def captures(draw):
    lines = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["pod-pod", "pod-out", "out-pod", "pod-apiserver"]))
        src = draw(st.sampled_from(SHOP_PODS))
        dst = draw(st.sampled_from(SHOP_PODS))
        port = draw(st.sampled_from([8080, 9090, 5432, 6379, 443, 53]))
        ip, names = draw(st.sampled_from(OUTSIDE))
        if kind == "pod-pod":
            lines.append(flow_line(src, dst, "10.0.0.9", port, sport=i))
        elif kind == "pod-out":
            lines.append(flow_line(src, WORLD, ip, port, sport=i, **({"destination_names": names} if names else {})))
        elif kind == "out-pod":
            lines.append(flow_line(WORLD, dst, "10.0.0.9", port, sport=i, src_ip=ip))
        else:
            lines.append(flow_line(src, {"identity": 7, "labels": ["reserved:kube-apiserver"]}, "10.0.0.1", 443, sport=i))
    return lines


@settings(max_examples=40, deadline=None)
@given(captures())
def test_applying_what_learn_proposes_leaves_only_the_connections_it_declined_dropped(tmp_path_factory, lines):
    capture = tmp_path_factory.mktemp("capture") / "flows.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    cfg, before = replay_config(SHOP_CONFIG, capture)
    proposal = learn.propose(cfg, before)
    _, after = replay_config(learn.apply(SHOP_CONFIG, proposal), capture)  # the applied config validates
    def key(row):
        return (row.ends, row.port, row.protocol)

    assert {key(d) for d in after.would_drop} <= {key(d) for d in proposal.declined}
    named = {f.flow["from"] for f in proposal.flows} | {f.flow.get("to") for f in proposal.flows}
    assert set(proposal.peers) <= named  # no peer without a flow that needs it


def test_the_markdown_output_on_the_shop_lists_peers_flows_and_unknown_pods_as_code(tmp_path, capsys):
    capture = write(
        tmp_path,
        flow_line(pod("ops", app="grafana"), pod("shop-web", app="web"), "10.0.0.8", 8080, sport=1),
        flow_line(pod("shop-core", app="batch-job"), pod("shop-web", app="web"), "10.0.0.8", 8080, sport=2),
    )
    assert main(["learn", "--stack", "shop", "--stack-file", str(SHOP), "--format", "markdown", "--flows", str(capture)]) == 0
    out = capsys.readouterr().out
    assert '| `ops-grafana` | `{"namespace": "ops", "labels": {"app": "grafana"}}` |' in out
    assert '| `{"from": "ops-grafana", "to": "web", "port": 8080, "protocol": "TCP"}` | 1 |' in out
    assert "- `shop-core/app=batch-job`" in out

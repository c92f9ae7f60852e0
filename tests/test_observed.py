"""Observed traffic: reading Hubble and Container Network Logs, and replaying it against a plan."""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import observed
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan

FIXTURES = Path(__file__).parent / "fixtures" / "observed"
HUBBLE = FIXTURES / "dev-hubble.jsonl"
ROWS = FIXTURES / "dev-container-network-logs.json"
SHOP = PROJECT_DIR / "examples" / "Pulumi.shop.yaml"


def flow_line(
    src: dict, dst: dict, dst_ip: str, port: int, *, sport: int = 40000, proto: str = "TCP", src_ip: str = "10.0.0.5", **extra
) -> str:
    l4 = {proto: {"source_port": sport, "destination_port": port, **({"flags": {"SYN": True}} if proto == "TCP" else {})}}
    flow = {"time": "2026-11-20T09:00:00Z", "verdict": "FORWARDED", "IP": {"source": src_ip, "destination": dst_ip},
            "l4": l4, "source": src, "destination": dst, "is_reply": False, **extra}
    return json.dumps({"flow": flow})


def pod(namespace: str, **labels: str) -> dict:
    return {"namespace": namespace, "labels": [f"k8s:{k}={v}" for k, v in labels.items()]}


WORLD = {"identity": 2, "labels": ["reserved:world"]}


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "flows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def by_ends(obs: observed.Observations) -> dict[tuple[str, str, int, str], int]:
    return {(c.src.display, c.dst.display, c.port, c.protocol): c.count for c in obs.connections.values()}


def test_one_connection_seen_at_both_nodes_counts_once_and_replies_are_not_connections():
    obs = observed.read([HUBBLE])
    conns = by_ends(obs)
    # two connections frontend -> backend:80 (two source ports); the destination node's record adds none
    assert conns[("frontend/frontend", "backend/backend", 80, "TCP")] == 2
    assert conns[("frontend/frontend", "kube-system/coredns", 53, "UDP")] == 1
    assert obs.skipped["replies"] == 2  # the DNS response and the SYN-ACK


def test_records_that_are_not_connections_are_counted_by_reason_and_a_cut_line_is_named_by_file_and_line():
    obs = observed.read([HUBBLE])
    assert obs.skipped["not a flow (node status, lost or agent events)"] == 1
    assert obs.skipped["not TCP, UDP or SCTP (ICMP and others)"] == 1
    assert obs.skipped["direction unknown (no is_reply, not a SYN)"] == 1
    assert obs.malformed == [f"{HUBBLE.name}:11: not JSON (a line cut by log rotation?)"]


def test_a_syn_without_a_reply_flag_starts_a_connection_and_a_syn_ack_is_a_reply(tmp_path):
    src, dst = pod("a", app="x"), pod("b", app="y")
    syn = json.loads(flow_line(src, dst, "10.0.0.6", 80))
    del syn["flow"]["is_reply"]
    synack = json.loads(flow_line(dst, src, "10.0.0.5", 40000, sport=80))
    del synack["flow"]["is_reply"]
    synack["flow"]["l4"]["TCP"]["flags"] = {"SYN": True, "ACK": True}
    obs = observed.read([write(tmp_path, json.dumps(syn), json.dumps(synack))])
    assert by_ends(obs) == {("a/app=x", "b/app=y", 80, "TCP"): 1}
    assert obs.skipped["replies"] == 1


def test_an_older_capture_that_names_the_namespace_only_as_a_label_still_places_the_pod(tmp_path):
    src = {"labels": ["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=frontend"]}
    obs = observed.read([write(tmp_path, flow_line(src, pod("backend", app="backend"), "10.0.0.6", 80))])
    (conn,) = obs.connections.values()
    assert conn.src.namespace == "frontend" and conn.src.labels == (("app", "frontend"),)


def test_log_analytics_rows_skip_replies_read_layer4_given_as_text_and_weigh_by_their_flow_counts():
    obs = observed.read([ROWS])
    conns = by_ends(obs)
    assert conns == {("frontend/frontend", "backend/backend", 80, "TCP"): 8, ("backend/backend", "frontend/frontend", 80, "TCP"): 2}
    assert obs.skipped["replies"] == 1


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_connections_read_do_not_depend_on_the_order_of_the_lines(tmp_path_factory, rnd: random.Random):
    lines = HUBBLE.read_text().splitlines()
    rnd.shuffle(lines)
    path = tmp_path_factory.mktemp("shuffled") / "flows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert by_ends(observed.read([path])) == by_ends(observed.read([HUBBLE]))


def test_replaying_the_dev_capture_names_the_undeclared_outside_call_the_plan_would_drop():
    plan = make_plan("dev", observed=[HUBBLE])
    r = plan.observed
    assert r is not None and not plan.ok
    assert [(d.src, d.dst, d.port) for d in r.would_drop] == [("frontend", "world 20.50.2.40 (api.example.com)", 443)]
    assert "egress of frontend/frontend is in default deny" in r.would_drop[0].dropped_by
    assert r.never_observed == () and r.undecided == () and r.unknown == ()


def test_a_declared_flow_missing_from_the_capture_is_listed_as_never_observed(tmp_path):
    capture = write(tmp_path, flow_line(pod("frontend", app="frontend"), pod("kube-system", **{"k8s-app": "kube-dns"}), "10.0.0.10", 53, proto="UDP"))
    plan = make_plan("dev", observed=[capture])
    assert plan.observed.never_observed == ("frontend -> backend:80/TCP",)
    assert plan.observed.would_drop == () and plan.ok


def test_a_pod_of_a_managed_namespace_that_matches_no_workload_is_reported_and_its_traffic_judged_as_a_stranger(tmp_path):
    capture = write(tmp_path, flow_line(pod("frontend", app="debug"), pod("backend", app="backend"), "10.0.0.6", 80))
    plan = make_plan("dev", observed=[capture])
    assert plan.observed.unknown == ("frontend/app=debug",)
    assert [(d.src, d.dst) for d in plan.observed.would_drop] == [("frontend/app=debug", "backend")]


def test_an_outside_address_is_judged_exactly_against_an_address_peer_and_its_except_ranges(tmp_path):
    payments = pod("shop-core", app="payments")
    capture = write(
        tmp_path,
        flow_line(payments, WORLD, "198.51.100.7", 443, sport=1),  # inside card-processor
        flow_line(payments, WORLD, "198.51.100.200", 443, sport=2),  # in its except range
    )
    plan = make_plan("shop", SHOP, observed=[capture])
    r = plan.observed
    assert "card-processor -> " not in " ".join(f"{d.src} -> {d.dst}" for d in (*r.would_drop, *r.undecided))
    assert "payments -> card-processor:443/TCP" not in r.never_observed
    # the except range is denied; the egress also has a toFQDNs rule, undecided for an address with no recorded name
    assert [(d.src, d.dst) for d in r.undecided] == [("payments", "world 198.51.100.200")]
    assert "covers" not in r.undecided[0].dropped_by and "no DNS name was recorded" in r.undecided[0].dropped_by


def test_traffic_from_the_internet_counts_as_observed_for_a_flow_from_a_world_entity_peer(tmp_path):
    capture = write(tmp_path, flow_line(WORLD, pod("shop-edge", app="edge"), "10.0.0.7", 8080))
    plan = make_plan("shop", SHOP, observed=[capture])
    assert "internet -> edge:8080/TCP" not in plan.observed.never_observed
    assert plan.observed.would_drop == ()


def test_the_plan_command_exits_one_when_observed_traffic_would_be_dropped_and_reports_it_in_json(capsys):
    assert main(["plan", "--stack", "dev", "--format", "json", "--observed", str(HUBBLE)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert [d["to"] for d in doc["observed"]["wouldDrop"]] == ["world 20.50.2.40 (api.example.com)"]
    assert doc["observed"]["skipped"]["malformed"] == [f"{HUBBLE.name}:11: not JSON (a line cut by log rotation?)"]


def test_a_missing_observed_file_is_one_error_line_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["plan", "--stack", "dev", "--out", str(out), "--observed", str(tmp_path / "nope.jsonl"), str(HUBBLE)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --observed {tmp_path / 'nope.jsonl'}: no such file"]
    assert not out.exists()


def test_an_end_without_a_namespace_is_named_by_its_numeric_reserved_identity(tmp_path):
    rows = [
        {"Reply": False, "SourceNamespace": "frontend", "SourceWorkloads": [{"name": "frontend"}], "DestinationIdentity": 7,
         "Layer4": {"TCP": {"destination_port": 443}}},
        {"Reply": False, "SourceNamespace": "frontend", "SourceWorkloads": [{"name": "frontend"}], "DestinationIdentity": 16777219,
         "Layer4": {"TCP": {"destination_port": 443}}},
    ]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    assert {c.dst.reserved for c in observed.read([path]).connections.values()} == {"kube-apiserver", "world"}


def test_names_from_a_capture_cannot_inject_markdown_into_the_pull_request_report(tmp_path, capsys):
    evil = {**WORLD}
    capture = write(tmp_path, flow_line(pod("frontend", app="frontend"), evil, "20.0.0.1", 443,
                                        destination_names=["x`<img src=y>[click](https://evil)"]))
    assert main(["plan", "--stack", "dev", "--format", "markdown", "--observed", str(capture)]) == 1
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("- `would drop")]
    assert row.endswith("`") and row.count("`") == 2


UPSTREAM = FIXTURES / "upstream-lines.jsonl"


def test_real_upstream_lines_become_the_connections_their_captures_show():
    obs = observed.read([UPSTREAM])
    conns = by_ends(obs)
    ratings = "bookinfo/app=ratings,sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo,version=v1"
    productpage = "bookinfo/app=productpage,sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo,version=v1"
    assert conns == {
        (ratings, productpage, 9080, "TCP"): 2,  # two client pods' SYNs (one seen only by its labels)
        (ratings, "kube-system/k8s-app=kube-dns", 53, "UDP"): 1,
        ("default/xwing", "default/deathstar-7848d6c4d5-th9v2", 80, "TCP"): 1,  # a field-masked policy drop
    }
    assert obs.skipped == {"replies": 2, "direction unknown (no is_reply, not a SYN)": 1}  # the GKE ACK to world
    assert obs.malformed == []


def test_a_real_policy_drop_keeps_its_verdict_and_a_redirect_to_the_proxy_counts_as_a_connection():
    verdicts = {c.port: c.verdicts for c in observed.read([UPSTREAM]).connections.values()}
    assert verdicts[80] == {"DROPPED"} and verdicts[9080] == {"FORWARDED", "REDIRECTED"}


def cluster_file(tmp_path: Path, *items: dict) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)}))
    return path


def egress_to_api(name: str) -> dict:
    rule = {"toCIDRSet": [{"cidr": "20.50.2.0/24"}], "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": "frontend"},
            "spec": {"endpointSelector": {}, "egress": [rule]}}


def test_a_policy_already_in_the_cluster_is_replayed_with_the_plans_own_and_its_allow_rules_add_up(tmp_path):
    plan = make_plan("dev", observed=[HUBBLE], cluster_policies=cluster_file(tmp_path, egress_to_api("legacy-egress")))
    assert plan.observed.would_drop == ()  # the call to 20.50.2.40:443 is allowed by the cluster's policy


def test_a_cluster_copy_of_one_of_the_stacks_own_policies_is_replaced_by_the_planned_one(tmp_path):
    plan = make_plan("dev", observed=[HUBBLE], cluster_policies=cluster_file(tmp_path, egress_to_api("zt-allow.frontend")))
    assert [d.dst for d in plan.observed.would_drop] == ["world 20.50.2.40 (api.example.com)"]


def test_a_networkpolicy_in_the_cluster_counts_in_the_replay(tmp_path):
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "out", "namespace": "frontend"},
             "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                      "egress": [{"to": [{"ipBlock": {"cidr": "20.50.0.0/16"}}], "ports": [{"port": 443}]}]}}
    plan = make_plan("dev", observed=[HUBBLE], cluster_policies=cluster_file(tmp_path, allow))
    assert plan.observed.would_drop == ()


def test_cluster_policies_that_are_not_yaml_are_one_error_line(tmp_path, capsys):
    bad = tmp_path / "cluster.yaml"
    bad.write_text("items: [\n")
    assert main(["plan", "--stack", "dev", "--observed", str(HUBBLE), "--cluster-policies", str(bad)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --cluster-policies {bad}: not YAML")


def test_an_outside_address_that_is_not_an_address_makes_its_line_malformed_not_a_traceback(tmp_path):
    capture = write(tmp_path, flow_line(pod("frontend", app="frontend"), WORLD, "not-an-ip", 443))
    obs = observed.read([capture])
    assert obs.connections == {} and obs.malformed == ["flows.jsonl:1: ValueError reading the flow"]


def test_a_declared_toFqdns_flow_counts_as_observed_when_a_connection_carries_one_of_its_names(tmp_path):
    payments = pod("shop-core", app="payments")
    seen = write(tmp_path, flow_line(payments, WORLD, "54.1.1.1", 443, destination_names=["API.stripe.com."]))
    assert "payments -> api.stripe.com:443/TCP" not in make_plan("shop", SHOP, observed=[seen]).observed.never_observed
    unseen = write(tmp_path, flow_line(payments, WORLD, "54.1.1.1", 443, destination_names=["other.example.com"]))
    assert "payments -> api.stripe.com:443/TCP" in make_plan("shop", SHOP, observed=[unseen]).observed.never_observed


def test_records_of_the_wrong_shape_are_reported_by_line_and_row_never_a_traceback(tmp_path):
    good = json.loads(flow_line(pod("frontend", app="frontend"), pod("backend", app="backend"), "10.0.0.6", 80))
    bad_lines = []
    for field, value in (("l4", {"TCP": [80]}), ("IP", ["10.0.0.5"]), ("source", {"namespace": ["x"]}), ("l4", {"TCP": {"destination_port": "eighty"}}),
                         ("l4", {"TCP": {"destination_port": 70000}})):
        doc = json.loads(json.dumps(good))
        doc["flow"][field] = value
        bad_lines.append(json.dumps(doc))
    lines = write(tmp_path, *bad_lines)
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([
        {"Reply": False, "SourceNamespace": "a", "Layer4": "{not json", "DestinationNamespace": "b"},
        {"Reply": False, "SourceNamespace": "a", "Layer4": {"TCP": {"destination_port": 80}}, "SourceWorkloads": "[oops"},
        {"Reply": False, "SourceNamespace": "a", "Layer4": {"TCP": {"destination_port": 80}}, "EgressFlowCount": "many"},
    ]))
    obs = observed.read([lines, rows])
    assert [m.split(": ")[0] for m in obs.malformed] == [
        "flows.jsonl:1", "flows.jsonl:2", "flows.jsonl:3", "flows.jsonl:4", "flows.jsonl:5", "rows.json", "rows.json", "rows.json",
    ]
    assert obs.connections == {}

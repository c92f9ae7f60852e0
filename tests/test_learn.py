"""``learn``: proposing the config that allows observed traffic, and the round trip through ``plan --observed``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.observed import fragment, learn
from policies.observed.learn import Proposal, ProposedFlow
from policies.observed.records import End
from policies.observed.replay import Replayed
from policies.config import PROJECT, ConfigErrors, load_config
from policies.config.limits import MAX_FQDNS_PER_FLOW
from policies.verdict.fqdn import name_matches
from tests.capture import HUBBLE, ROWS, SHOP, WORLD, flow_line, guardrail_report, la_row, pod, replay_config, stack_config, write
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan

DEV_FILE = PROJECT_DIR / "Pulumi.dev.yaml"


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
    # the pod of a managed namespace that matched no workload becomes a workload deployed elsewhere
    assert proposal.workloads == {"debug": {"namespace": "frontend", "selector": {"app": "debug"}}}
    r = plan.observed
    assert (r.would_drop, r.undecided, r.unknown) == ((), (), ())


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
    assert proposal.notes == [
        "payments -> world 198.51.100.200:443/TCP: 198.51.100.200 is in the except ranges of peer card-processor: "
        "excluded there on purpose, not proposed"
    ]


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


def test_the_yaml_output_holds_the_merged_value_of_every_key_it_changes_ready_to_paste_under_config(capsys):
    assert main(["learn", "--stack", "dev", "--flows", str(HUBBLE)]) == 0
    out = capsys.readouterr().out
    fragment = yaml.safe_load(out)
    config = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    assert set(fragment) == {f"{PROJECT}:peers", f"{PROJECT}:flows"}
    assert fragment[f"{PROJECT}:flows"] == [*config[f"{PROJECT}:flows"], {"from": "frontend", "to": "addr-20-50-2-40", "port": 443, "protocol": "TCP"}]
    # pasted in place of those keys under config:, it is the merged stack, and it validates
    merged = {**config, **fragment}
    load_config(merged)
    assert '    - {"from": "frontend", "to": "addr-20-50-2-40", "port": 443, "protocol": "TCP"}  # learned: 1 seen' in out


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

SHOP_CONFIG = stack_config(SHOP)
SHOP_PODS = [
    pod(w["namespace"], app=name) for name, w in SHOP_CONFIG[f"{PROJECT}:workloads"].items()
] + [pod("ops", app="grafana"), pod("shop-core", app="batch-job"), pod("ingress-nginx", **{"app.kubernetes.io/name": "ingress-nginx"})]
OUTSIDE = [
    ("52.9.9.1", []), ("203.0.113.5", []), ("198.51.100.7", []), ("198.51.100.200", []), ("10.200.0.4", []),
    ("54.1.1.1", ["api.stripe.com"]), ("34.2.2.2", ["hooks.example.org"]),
]


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


def round_trip(config: dict, capture: Path, learner=learn.propose) -> learn.Proposal:
    """What ``learn`` must hold on any capture: its proposal merged into the stack validates and passes the
    mandatory guardrails; replayed again, only connections it declined still drop; it declines only with a
    reason (a note naming the connection, or a pod that matches no workload); it proposes no unused peer."""
    cfg, before = replay_config(config, capture)
    proposal = learner(cfg, before)
    applied = learn.apply(config, proposal)
    try:
        load_config(applied)
    except ConfigErrors as e:
        raise AssertionError(f"the merged proposal does not validate: {e.lines}") from None
    report = guardrail_report(applied)
    assert report.ok, [v.message for v in report.mandatory]
    _, after = replay_config(applied, capture)

    def key(row):
        return (row.ends, row.port, row.protocol)

    assert {key(d) for d in after.would_drop} <= {key(d) for d in proposal.declined}
    for d in proposal.declined:
        what = f"{d.src} -> {d.dst}:{d.port}/{d.protocol}"
        assert any(n.startswith(what) for n in proposal.notes) or {d.src, d.dst} & set(proposal.unknown), f"declined without a reason: {what}"
    named = {f.flow["from"] for f in proposal.flows} | {f.flow.get("to") for f in proposal.flows}
    assert set(proposal.peers) | set(proposal.workloads) <= named  # no peer or workload without a flow that needs it
    return proposal


@settings(max_examples=40, deadline=None)
@given(captures())
def test_applying_what_learn_proposes_validates_passes_the_guardrails_and_leaves_only_what_it_declined_dropped(tmp_path_factory, lines):
    capture = tmp_path_factory.mktemp("capture") / "flows.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    round_trip(SHOP_CONFIG, capture)


def test_the_round_trip_property_fails_for_a_learner_that_declines_everything(tmp_path):
    capture = write(tmp_path, flow_line(pod("ops", app="grafana"), pod("shop-web", app="web"), "10.244.0.8", 8080))

    def decline_everything(cfg, report):
        return learn.Proposal(declined=list(report.would_drop) + list(report.undecided))

    round_trip(SHOP_CONFIG, capture)
    with pytest.raises(AssertionError, match="declined without a reason: ops-grafana|ops/app=grafana"):
        round_trip(SHOP_CONFIG, capture, decline_everything)


def test_an_outside_destination_without_an_address_is_a_note_never_a_flow_to_all_of_world(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([la_row("shop-core", "payments", "", "", 443, DestinationIdentity=2)]))
    proposal = round_trip(SHOP_CONFIG, rows)
    assert proposal.empty and "payments -> internet:443/TCP: the capture has no address for the outside end" in proposal.notes[0]


def test_an_outside_client_without_an_address_is_the_world_entity_peer(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([la_row("", "", "shop-web", "web", 8080, SourceIdentity=2)]))
    config = {**SHOP_CONFIG, f"{PROJECT}:workloads": {**SHOP_CONFIG[f"{PROJECT}:workloads"],
                                                      "web": {**SHOP_CONFIG[f"{PROJECT}:workloads"]["web"], "expose": "loadBalancer"}}}
    proposal = round_trip(config, rows)
    assert [f.flow for f in proposal.flows] == [{"from": "internet", "to": "web", "port": 8080, "protocol": "TCP"}] and proposal.peers == {}


def proposed_under(tmp_path, config: dict, deny_to: dict, *lines: str) -> learn.Proposal:
    """What learn proposes from a capture replayed against the stack's policies and a cluster policy that
    denies orders' egress to ``deny_to``: what it drops is declared, or not, and dropped either way."""
    from policies.analysis import matrix as mx
    from policies import observed as observed_
    from policies.observed import replay as replay_
    from policies.render import render

    cfg = load_config(config)
    objects = render(cfg).all()
    deny = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "freeze", "namespace": "shop-core"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "orders"}}, "egressDeny": [deny_to]}}
    report = replay_.replay(cfg, [o for o in objects if o["apiVersion"].startswith("cilium.io/")] + [deny],
                            mx.workloads_from_manifests(objects), observed_.read([write(tmp_path, *lines)]), cfg.cilium_version)
    return learn.propose(cfg, report)


TO_SHOP_DATA = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop-data"}}]}
ORDERS = pod("shop-core", app="orders")


@pytest.mark.parametrize("listens", [6379, 16379], ids=["on the port clients dial", "behind a Service targetPort"])
def test_a_declared_flow_that_another_policy_still_drops_is_declined_with_a_note(tmp_path, listens):
    config = json.loads(json.dumps(SHOP_CONFIG))
    redis = config[f"{PROJECT}:workloads"]["redis"]
    del redis["port"]
    redis["ports"] = [{"name": "redis", "port": 6379, "targetPort": listens}]
    proposal = proposed_under(tmp_path, config, TO_SHOP_DATA, flow_line(ORDERS, pod("shop-data", app="redis"), "10.244.0.20", listens))
    assert proposal.empty and [d.src for d in proposal.declined] == ["orders"]
    assert proposal.notes[0].startswith(f"orders -> redis:{listens}/TCP is declared and still dropped: denied shop-core/orders")


def with_resolver(ports: list[dict], port: str) -> dict:
    """The shop with a DNS server in shop-data serving ``ports``, and orders declared to reach it at ``port``."""
    config = json.loads(json.dumps(SHOP_CONFIG))
    config[f"{PROJECT}:workloads"]["resolver"] = {"namespace": "shop-data", "image": "coredns/coredns:1.12.0", "ports": ports}
    config[f"{PROJECT}:flows"] = [*config[f"{PROJECT}:flows"], {"from": "orders", "to": "resolver", "port": port}]
    return config


def test_a_flow_declared_over_tcp_does_not_cover_udp_to_the_same_port(tmp_path):
    config = with_resolver([{"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
                            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}], "dns-tcp")
    udp = flow_line(ORDERS, pod("shop-data", app="resolver"), "10.244.0.30", 5353, proto="UDP")
    proposal = proposed_under(tmp_path, config, TO_SHOP_DATA, udp)
    assert [f.flow for f in proposal.flows] == [{"from": "orders", "to": "resolver", "port": 53, "protocol": "UDP"}]
    assert proposal.notes == [] and proposal.declined == []


def test_a_declared_flow_is_found_by_its_own_protocols_port_where_tcp_and_udp_listen_apart(tmp_path):
    config = with_resolver([{"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353},
                            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5354}], "dns")
    udp = flow_line(ORDERS, pod("shop-data", app="resolver"), "10.244.0.30", 5354, proto="UDP")
    proposal = proposed_under(tmp_path, config, TO_SHOP_DATA, udp)
    assert proposal.empty and proposal.notes[0].startswith("orders -> resolver:5354/UDP is declared and still dropped")


def test_a_call_a_declared_toFqdns_flow_covers_that_another_policy_drops_is_declined_with_a_note(tmp_path):
    config = json.loads(json.dumps(SHOP_CONFIG))
    config[f"{PROJECT}:flows"] = [*config[f"{PROJECT}:flows"], {"from": "orders", "toFqdns": ["*.example.com"], "port": 443}]
    call = flow_line(ORDERS, WORLD, "54.1.1.1", 443, destination_names=["api.example.com."])
    proposal = proposed_under(tmp_path, config, {"toCIDR": ["54.0.0.0/8"]}, call)
    assert proposal.empty and proposal.notes[0].startswith("orders -> world 54.1.1.1 (api.example.com):443/TCP is declared and still dropped")


def test_outside_names_become_an_address_peer_when_egress_default_deny_is_off(tmp_path):
    config = {**stack_config(DEV_FILE), f"{PROJECT}:zeroTrust": {"defaultDeny": "ingress"}}
    config[f"{PROJECT}:cluster"] = {**config[f"{PROJECT}:cluster"], "advancedNetworking": {"security": "fqdn"}}
    cfg = load_config(config)
    from policies.observed.replay import Replayed
    from policies.observed.records import End

    row = Replayed("frontend", "world 52.1.1.1 (api.example.com)", 443, "TCP", 1, "", "", "denied by a cluster policy",
                   (End("frontend", (("app", "frontend"),), workload="frontend"), End(reserved="world", ip="52.1.1.1", names=("api.example.com",))))
    proposal = learn.propose(cfg, learn.ReplayReport(1, (row,), (), ()))
    assert [f.flow for f in proposal.flows] == [{"from": "frontend", "to": "addr-52-1-1-1", "port": 443, "protocol": "TCP"}]
    assert "with zero-trust-aks:zeroTrust.defaultDeny: ingress-and-egress a toFqdns flow" in proposal.notes[0]
    load_config(learn.apply(config, proposal))  # a toFqdns flow would not validate here


def test_many_names_for_one_connection_are_split_over_flows_of_at_most_the_per_flow_limit(tmp_path):
    from policies.config.limits import MAX_FQDNS_PER_FLOW

    names = [f"h{i}.example.org" for i in range(MAX_FQDNS_PER_FLOW + 3)]
    capture = write(tmp_path, *(flow_line(pod("shop-core", app="payments"), WORLD, f"52.0.{i // 250}.{i % 250 + 1}", 443, sport=i,
                                          destination_names=[n]) for i, n in enumerate(names)))
    proposal = round_trip(SHOP_CONFIG, capture)
    assert sorted(len(f.flow["toFqdns"]) for f in proposal.flows) == [3, MAX_FQDNS_PER_FLOW]
    assert {(f.count, f.first, f.last) for f in proposal.flows} == {(len(names), "2026-11-20T09:00:00Z", "2026-11-20T09:00:00Z")}


def test_the_markdown_output_on_the_shop_lists_workloads_peers_and_flows_as_code(tmp_path, capsys):
    capture = write(
        tmp_path,
        flow_line(pod("ops", app="grafana"), pod("shop-web", app="web"), "10.0.0.8", 8080, sport=1),
        flow_line(pod("shop-core", app="batch-job"), pod("shop-web", app="web"), "10.0.0.8", 8080, sport=2),
    )
    assert main(["learn", "--stack", "shop", "--stack-file", str(SHOP), "--format", "markdown", "--flows", str(capture)]) == 0
    out = capsys.readouterr().out
    assert '| `ops-grafana` | `{"namespace": "ops", "labels": {"app": "grafana"}}` |' in out
    assert '| `{"from": "ops-grafana", "to": "web", "port": 8080, "protocol": "TCP"}` | 1 |' in out
    assert '| `batch-job` | `{"namespace": "shop-core", "selector": {"app": "batch-job"}}` |' in out
    assert "Pods that match no workload" not in out


# -- learn --write ---------------------------------------------------------------------------------------------

COMMENTED = """\
# The dev stack, with the comments a team keeps.
config:
  azure-native:location: westeurope # the region
  zero-trust-aks:resourceGroupName: aks-zero-trust-rg
  zero-trust-aks:cluster:
    name: aks-zero-trust
    networkPluginMode: node-subnet # as the walkthrough
  zero-trust-aks:workloads:
    frontend: {namespace: frontend, image: nginx:1.27, port: 80, securityProfile: baseline}
    # the API
    backend:
      namespace: backend
      image: nginx:1.27
      port: 80
      securityProfile: baseline
  zero-trust-aks:flows:
    - {from: frontend, to: backend} # the one flow
"""


def test_learn_write_merges_into_the_stack_file_keeping_its_comments_prints_the_diff_and_the_replay_is_then_clean(tmp_path, capsys):
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(COMMENTED)
    capture = mixed_dev_capture(tmp_path)
    assert main(["learn", "--stack", "dev", "--stack-file", str(stack), "--write", "--flows", str(HUBBLE), str(capture)]) == 0
    out = capsys.readouterr().out
    written = stack.read_text()
    # every line of the file is still there, in its place; only learned lines are added
    added = [line for line in written.splitlines() if line not in COMMENTED.splitlines()]
    assert COMMENTED.splitlines() == [line for line in written.splitlines() if line not in added]
    assert added and all("learned" in line or line.strip().endswith(":") for line in added), added
    assert f"--- {stack}" in out and f"+++ {stack}" in out and sum(line.startswith("+ ") or line.startswith("+  ") for line in out.splitlines()) == len(added)
    plan = make_plan("dev", stack, observed=[HUBBLE, capture])
    assert (plan.observed.would_drop, plan.observed.undecided, plan.observed.unknown) == ((), (), ())


def test_learn_write_refuses_a_merge_that_would_not_validate_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from policies.observed.learn import ProposedFlow

    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(COMMENTED)
    bad = learn.Proposal(flows=[ProposedFlow({"from": "frontend", "to": "backend", "port": 9999, "protocol": "TCP"}, 1, "", "")])
    monkeypatch.setattr(learn, "propose", lambda cfg, report: bad)
    assert main(["learn", "--stack", "dev", "--stack-file", str(stack), "--write", "--flows", str(HUBBLE)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: learn --write: the merged stack would not validate; Pulumi.dev.yaml is unchanged:"
    assert err[1] == "error: zero-trust-aks:flows[1].port: 'backend' has no port 9999; it serves: serve (80/TCP)"
    assert stack.read_text() == COMMENTED and [p.name for p in tmp_path.iterdir()] == ["Pulumi.dev.yaml"]


# -- the proposal as people read it: fragment, markdown, merged text ------------------------------

LEARNED_FLOW = ProposedFlow({"from": "frontend", "to": "api", "ports": [8080]}, 3, "2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z")


def test_an_empty_proposal_says_there_is_nothing_to_add_and_still_lists_its_unknown_pods_and_notes():
    p = Proposal(unknown=["shop/app=`x`"], notes=["a note"])
    md = fragment.as_markdown(p, "Learned").splitlines()
    assert md == ["## Learned", "", "No workloads, peers or flows to add.", "", "### Pods that match no workload", "", "- `shop/app='x'`", "",
                  "### Notes", "", "- `a note`"]
    text = fragment.as_yaml(p, "Learned", {}, "Pulumi.dev.yaml").splitlines()
    assert text[3:] == ["# no workloads, peers or flows to add", "# pods that match no workload (add a workload for each, or they lose their traffic):",
                        "#   shop/app=`x`", "# notes:", "#   a note"]


def test_the_fragment_marks_as_learned_only_the_entries_the_proposal_adds():
    config = {fragment.PEERS: {"old": {"cidr": "10.1.0.0/16"}}, fragment.FLOWS: [{"from": "a", "to": "b", "ports": [80]}]}
    p = Proposal(flows=[LEARNED_FLOW], peers={"new": {"cidr": "10.2.0.0/16"}})
    text = fragment.as_yaml(p, "Learned", config, "Pulumi.dev.yaml").splitlines()
    assert text[3:] == [
        f"  {fragment.PEERS}:", '    old: {"cidr": "10.1.0.0/16"}', '    new: {"cidr": "10.2.0.0/16"}  # learned',
        f"  {fragment.FLOWS}:", '    - {"from": "a", "to": "b", "ports": [80]}',
        '    - {"from": "frontend", "to": "api", "ports": [8080]}  # learned: 3 seen, 2026-11-20T09:00:00Z .. 2026-11-20T10:00:00Z',
    ]


STACK_TEXT = """\
# the dev stack
config:
  zero-trust-aks:location: 'westeurope'   # quoted on purpose
  zero-trust-aks:flows:
    - from: a
      to: b
      ports: [80]
      description: "a description long enough that a YAML writer folding at eighty columns would have had to break this line in two"
"""


def test_merging_into_a_stack_file_keeps_its_quotes_indentation_long_lines_and_comments():
    merged = fragment.merged_text(STACK_TEXT, Proposal(flows=[LEARNED_FLOW]))
    assert merged.startswith(STACK_TEXT)
    assert merged[len(STACK_TEXT):] == ("    - {from: frontend, to: api, ports: [8080]}  # learned: 3 seen, 2026-11-20T09:00:00Z .. 2026-11-20T10:00:00Z\n")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "encryptionsalt: v1:abc\n"], ids=["empty", "comment", "no config key"])
def test_merging_into_a_stack_file_without_config_or_flows_creates_them(text):
    merged = fragment.merged_text(text, Proposal(flows=[LEARNED_FLOW], workloads={"api": {"selector": {"app": "api"}}}))
    doc = yaml.safe_load(merged)
    assert doc["config"] == {fragment.WORKLOADS: {"api": {"selector": {"app": "api"}}}, fragment.FLOWS: [LEARNED_FLOW.flow]}
    assert "# learned" in merged.split(fragment.WORKLOADS)[1]


# -- what the learner names and why it declines, row by row ----------------------------------------

FRONTEND_END = End("frontend", (("app", "frontend"),), workload="frontend")


def dropped(src: End, dst: End, port: int = 80, *, protocol: str = "TCP", layer: str = "L3/L4", requests: tuple[str, ...] = ()) -> Replayed:
    # named as the replay names them: a declared workload by its name, anything else by what the record shows
    return Replayed(src.workload or src.display, dst.workload or dst.display, port, protocol, 1, "2026-11-20T09:00:00Z", "2026-11-20T09:00:00Z", "default deny",
                    (src, dst), layer, requests)


def propose_rows(config: dict, *rows: Replayed) -> learn.Proposal:
    return learn.propose(load_config(config), learn.ReplayReport(len(rows), rows, (), ()))


def dev_config(**changes) -> dict:
    config = stack_config(DEV_FILE)
    for key, value in changes.items():
        config[f"{PROJECT}:{key}"] = value
    return config


def test_clients_on_the_internet_of_a_stack_without_a_world_peer_become_one_internet_entity_peer():
    config = dev_config()
    config[f"{PROJECT}:workloads"]["frontend"]["expose"] = "loadBalancer"
    rows = [dropped(End(reserved="world"), FRONTEND_END), dropped(End(reserved="world", ip="52.9.9.9"), FRONTEND_END)]
    p = propose_rows(config, *rows)
    assert p.peers == {"internet": {"entity": "world"}}
    assert [(f.flow, f.count) for f in p.flows] == [({"from": "internet", "to": "frontend", "port": 80, "protocol": "TCP"}, 2)]


def test_a_learned_peer_name_never_takes_a_name_the_stack_has_and_stays_a_dns_label():
    config = dev_config(peers={"ops-grafana": {"cidrs": ["10.9.0.0/16"]}, "ops-grafana-2": {"cidrs": ["10.8.0.0/16"]}})
    long = "g" * 58 + "-x" * 5
    ends = [End("ops", (("app", "grafana"),)), End("ops", (("app.kubernetes.io/name", "grafana"),)), End("ops", (("app", long),)),
            End("ops", (("k8s-app", long),))]
    p = propose_rows(config, *(dropped(e, End("backend", (("app", "backend"),), workload="backend")) for e in ends))
    cut = ("ops-" + long)[:63].rstrip("-")
    assert list(p.peers) == ["ops-grafana-3", "ops-grafana-4", cut, cut[:60] + "-2"]
    assert len(cut) == 62


def test_a_pod_of_a_managed_namespace_without_an_app_label_is_listed_once_as_unknown():
    nameless = End("frontend", (("tier", "web"),))
    backend = End("backend", (("app", "backend"),), workload="backend")
    p = propose_rows(dev_config(), dropped(nameless, backend), dropped(nameless, backend, 8080))
    assert p.unknown == ["frontend/tier=web"] and p.flows == [] and p.workloads == {}


def test_a_pod_whose_app_label_would_select_a_declared_workloads_pods_is_declined_with_a_note():
    twin = End("backend", (("app", "backend"), ("track", "canary")))
    p = propose_rows(dev_config(), dropped(FRONTEND_END, twin))
    assert p.flows == [] and p.unknown == ["backend/app=backend,track=canary"]
    assert p.notes == ["backend/app=backend,track=canary: selecting it by app=backend would select the pods of 'backend' too; declare it by hand"]


def test_dns_to_kube_dns_without_allow_dns_is_a_note_naming_the_key_to_set():
    kube_dns = End("kube-system", (("k8s-app", "kube-dns"),))
    row = Replayed("frontend", "kube-dns", 53, "UDP", 1, "", "", "default deny", (FRONTEND_END, kube_dns))
    p = propose_rows(dev_config(zeroTrust={"allowDns": False, "verify": False}), row)
    assert p.flows == [] and p.notes == [f"frontend -> kube-dns:53/UDP: DNS to kube-dns would be dropped: set {PROJECT}:zeroTrust.allowDns: true"]


def test_a_reserved_identity_no_flow_can_name_is_a_note_and_one_a_peer_can_name_becomes_its_entity_peer():
    p = propose_rows(dev_config(), dropped(End(reserved="health"), FRONTEND_END), dropped(End(reserved="remote-node"), FRONTEND_END))
    assert p.notes == ["health -> frontend:80/TCP: traffic of the reserved identity 'health' cannot be declared as a flow"]
    assert p.peers == {"remote-node": {"entity": "remote-node"}}


def test_a_pod_of_another_namespace_known_without_labels_is_a_namespace_peer_with_a_note():
    p = propose_rows(dev_config(), dropped(End("monitoring", labels_known=False, pod="prom-0"), End("backend", workload="backend")))
    assert p.peers == {"monitoring": {"namespace": "monitoring"}}
    assert p.notes == ["monitoring/prom-0: no app label in the capture (Log Analytics rows carry none); "
                       "the proposed peer admits every pod of namespace monitoring: narrow it with labels"]


def test_an_outside_name_is_proposed_without_its_trailing_dot_and_in_lower_case(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="payments"), WORLD, "34.2.2.9", 443, destination_names=["Hooks.Example.ORG."]))
    proposal, _ = learned("shop", SHOP, capture)
    assert [f.flow for f in proposal.flows] == [{"from": "payments", "toFqdns": ["hooks.example.org"], "port": 443, "protocol": "TCP"}]


@pytest.mark.parametrize("layer, requests, said", [
    ("HTTP", ("GET /admin", "POST /x"), "HTTP rules reject GET /admin, POST /x; widen the flow's http rules if they are intended"),
    ("HTTP", (), "HTTP rules reject its requests; widen the flow's http rules if they are intended"),
    ("DNS", ("evil.example",), "DNS rules reject evil.example; a toFqdns flow for a name lets its pods look it up"),
])
def test_a_connection_its_l7_rules_reject_is_declined_with_what_they_reject_and_the_fix(layer, requests, said):
    row = dropped(FRONTEND_END, End("backend", workload="backend"), layer=layer, requests=requests)
    p = propose_rows(dev_config(), row)
    assert p.flows == [] and p.declined == [row] and p.notes == [f"frontend -> backend:80/TCP: {said}"]


def test_pods_deployed_elsewhere_are_one_workload_per_selector_each_port_and_protocol_listed_once(tmp_path):
    frontend, backend = pod("frontend", app="frontend"), pod("backend", app="backend")
    cache, queue = pod("backend", app="cache"), pod("backend", app="queue")
    capture = write(
        tmp_path,
        *(flow_line(src, cache, "10.0.0.9", 6379, sport=n, proto=proto, src_ip=ip)
          for n, (src, ip) in enumerate(((frontend, "10.244.0.5"), (backend, "10.244.0.6")), 1) for proto in ("TCP", "UDP")),
        flow_line(frontend, queue, "10.0.0.10", 5672, sport=9),
    )
    proposal, _ = learned("dev", None, capture)
    assert proposal.workloads == {
        "cache": {"namespace": "backend", "selector": {"app": "cache"},
                  "ports": [{"name": "tcp-6379", "port": 6379}, {"name": "udp-6379", "port": 6379, "protocol": "UDP"}]},
        "queue": {"namespace": "backend", "selector": {"app": "queue"}, "ports": [{"name": "tcp-5672", "port": 5672}]},
    }


def test_names_learned_for_one_source_and_port_become_one_toFqdns_flow_counted_and_dated_across_its_connections(tmp_path):
    payments = pod("shop-core", app="payments")
    capture = write(
        tmp_path,
        flow_line(payments, WORLD, "203.0.113.9", 443, sport=1, destination_names=["Hooks.Example.org."], time="2026-11-20T10:00:00Z"),
        flow_line(payments, WORLD, "203.0.113.10", 443, sport=2, destination_names=["api.example.net."], time="2026-11-20T09:00:00Z"),
        flow_line(payments, WORLD, "203.0.113.10", 443, sport=3, destination_names=["api.example.net."], time="2026-11-20T11:00:00Z"),
    )
    proposal, _ = learned("shop", SHOP, capture)
    (f,) = [f for f in proposal.flows if "toFqdns" in f.flow]
    assert f.flow == {"from": "payments", "toFqdns": ["api.example.net", "hooks.example.org"], "port": 443, "protocol": "TCP"}
    assert (f.count, f.first, f.last) == (3, "2026-11-20T09:00:00Z", "2026-11-20T11:00:00Z")


def test_a_pod_that_cannot_be_named_is_listed_once_however_many_connections_it_has(tmp_path):
    nameless = pod("frontend", tier="web")  # no app label: no selector to propose
    backend = pod("backend", app="backend")
    debug = pod("frontend", app="debug")  # named by its app label: a workload deployed elsewhere, not unknown
    capture = write(tmp_path, *(flow_line(nameless, backend, "10.0.0.6", port, sport=port) for port in (80, 81, 82)),
                    flow_line(debug, backend, "10.0.0.6", 80, sport=9, src_ip="10.244.0.9"))
    proposal, _ = learned("dev", None, capture)
    assert proposal.unknown == ["frontend/tier=web"] and "debug" in proposal.workloads


def test_proposed_flows_come_busiest_first_then_in_the_order_of_their_sorted_keys(tmp_path):
    frontend = pod("frontend", app="frontend")
    capture = write(
        tmp_path,
        flow_line(frontend, WORLD, "52.1.1.1", 8080, sport=1),  # addr-52-1-1-1 on 8080
        flow_line(frontend, WORLD, "52.1.1.2", 443, sport=2),  # addr-52-1-1-2 on 443
        *(flow_line(frontend, WORLD, "52.1.1.9", 9000, sport=n) for n in (3, 4, 5)),  # one connection, seen 3 times
    )
    proposal, _ = learned("dev", None, capture)
    # port before to in sorted keys: 443 sorts before 8080, though addr-52-1-1-1 sorts before addr-52-1-1-2
    assert [(f.flow["to"], f.flow["port"], f.count) for f in proposal.flows] == [
        ("addr-52-1-1-9", 9000, 3), ("addr-52-1-1-2", 443, 1), ("addr-52-1-1-1", 8080, 1)]


INGRESS_POD = End("ingress-nginx", (("app.kubernetes.io/name", "ingress-nginx"),))
API_EXAMPLE = End(reserved="world", ip="52.1.1.1", names=("api.example.com",))
FQDN_DEV = {"cluster": {**stack_config(DEV_FILE)[f"{PROJECT}:cluster"], "advancedNetworking": {"security": "fqdn"}}}


@pytest.mark.parametrize("first", [False, True], ids=["a peer proposed by the same row", "a peer an earlier row proposed"])
def test_a_connection_between_a_proposed_peer_and_outside_names_is_a_note_not_a_flow(first):
    rows = [dropped(INGRESS_POD, FRONTEND_END)] if first else []
    rows.append(dropped(INGRESS_POD, API_EXAMPLE, 443))
    p = propose_rows(dev_config(**FQDN_DEV), *rows)
    assert [f.flow["to"] for f in p.flows] == (["frontend"] if first else [])
    assert list(p.peers) == (["ingress-nginx-ingress-nginx"] if first else [])
    assert p.notes == [f"{rows[-1].src} -> {rows[-1].dst}:443/TCP: between two peers (or a peer and outside names), not this stack's to enforce"]


@pytest.mark.parametrize("earlier", [False, True], ids=["proposed by the same row", "proposed by an earlier row"])
def test_the_internet_reaching_a_proposed_workload_without_a_load_balancer_is_a_note_not_a_flow(earlier):
    admin = End("backend", (("app", "admin"),))
    rows = [dropped(FRONTEND_END, admin, 9000)] if earlier else []
    rows.append(dropped(End(reserved="world", ip="52.9.9.9"), admin, 9000))
    p = propose_rows(dev_config(), *rows)
    assert [f.flow["from"] for f in p.flows] == (["frontend"] if earlier else [])
    assert p.notes == [f"{rows[-1].src} -> backend/app=admin:9000/TCP: set {PROJECT}:workloads.admin.expose: loadBalancer "
                       "to take traffic from the internet"]


def test_an_internet_peer_an_earlier_row_proposed_still_needs_a_load_balancer_for_a_workload_that_has_none():
    config = dev_config()
    config[f"{PROJECT}:workloads"]["frontend"]["expose"] = "loadBalancer"
    backend = End("backend", (("app", "backend"),), workload="backend")
    p = propose_rows(config, dropped(End(reserved="world", ip="52.9.9.9"), FRONTEND_END), dropped(End(reserved="world", ip="52.9.9.8"), backend))
    assert [f.flow for f in p.flows] == [{"from": "internet", "to": "frontend", "port": 80, "protocol": "TCP"}]
    assert p.notes == [f"world 52.9.9.8 -> backend:80/TCP: set {PROJECT}:workloads.backend.expose: loadBalancer to take traffic from the internet"]


def test_an_undecided_connection_a_declared_flow_covers_is_neither_proposed_nor_declined():
    backend = End("backend", (("app", "backend"),), workload="backend")
    p = learn.propose(load_config(dev_config()), learn.ReplayReport(1, (), (), (), undecided=(dropped(FRONTEND_END, backend),)))
    assert p.empty and p.notes == [] and p.declined == []


@pytest.mark.parametrize("count, flows", [(MAX_FQDNS_PER_FLOW, 1), (MAX_FQDNS_PER_FLOW + 1, 2)])
def test_outside_names_are_proposed_at_most_max_fqdns_per_flow_names_to_a_flow(count, flows):
    rows = [dropped(FRONTEND_END, End(reserved="world", ip=f"52.1.{i // 250}.{i % 250 + 1}", names=(f"n{i}.example.com",)), 443)
            for i in range(count)]
    p = propose_rows(dev_config(**FQDN_DEV), *rows)
    assert [len(f.flow["toFqdns"]) for f in p.flows] == [MAX_FQDNS_PER_FLOW, count - MAX_FQDNS_PER_FLOW][:flows]


def test_a_pod_whose_app_label_is_all_a_workload_deployed_elsewhere_selects_by_is_declined_with_a_note():
    config = dev_config()
    config[f"{PROJECT}:workloads"]["cache"] = {"namespace": "backend", "selector": {"app": "cache"}}
    twin = End("backend", (("app", "cache"), ("track", "canary")))
    p = propose_rows(config, dropped(FRONTEND_END, twin, 6379))
    assert p.flows == [] and p.workloads == {}
    assert p.notes == ["backend/app=cache,track=canary: selecting it by app=cache would select the pods of 'cache' too; declare it by hand"]


def test_a_flow_learned_from_undated_connections_stays_undated():
    backend = End("backend", (("app", "backend"),), workload="backend")
    config = dev_config()
    config[f"{PROJECT}:workloads"]["frontend"]["port"] = 80
    p = propose_rows(config, *(Replayed("backend", "frontend", 80, "TCP", 1, "", "", "default deny", (backend, FRONTEND_END)) for _ in range(2)))
    assert [(f.flow["from"], f.count, f.first, f.last) for f in p.flows] == [("backend", 2, "", "")]


def test_clients_on_the_internet_are_named_by_the_stacks_own_world_peer_not_a_second_one():
    shop = stack_config(SHOP)
    shop[f"{PROJECT}:workloads"]["api"] = {**shop[f"{PROJECT}:workloads"]["api"], "expose": "loadBalancer"}
    api = End("shop-core", (("app", "api"),), workload="api")
    p = propose_rows(shop, dropped(End(reserved="world", ip="52.9.9.9"), api, 8080))
    assert p.peers == {}
    assert [f.flow for f in p.flows] == [{"from": "internet", "to": "api", "port": 8080, "protocol": "TCP"}]

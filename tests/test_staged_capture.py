"""Staged namespaces in a capture: Cilium's policy verdicts read per version, and the replay they decide.

The records derive from upstream line 2 (``tests/fixtures/observed/README.md``): a real policy-verdict event
(``event_type.type`` 5, ``policy_match_type`` 3, cilium/hubble-otel testdata). The fields each Cilium version
fills come from cilium/cilium ``api/v1/flow/flow.proto`` and ``pkg/policy/correlation`` as the research notes
record them: ``*_allowed_by`` since 1.15 (empty where the allow-all Cilium adds with default deny off matched),
and in the newest releases that allow-all named by its ``derived-from=allow-any-*`` label. No public capture
of such a staged verdict exists, so these shapes are derived, not recorded.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from policies import observed
from policies.config import PROJECT
from policies.observed import hubble
from tests.capture import WORLD, camel, flow_line, la_row, pod, stack_config, upstream, write
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import make_plan

ZT_ALLOW_BACKEND = {"name": "zt-allow.backend", "namespace": "backend", "labels": [
    "k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy", "k8s:io.cilium.k8s.policy.name=zt-allow.backend",
    "k8s:io.cilium.k8s.policy.namespace=backend", "k8s:io.cilium.k8s.policy.uid=0c1d2e3f-0000-4000-8000-000000000001"], "revision": "7"}
ALLOW_ANY = {"labels": ["reserved:io.cilium.policy.derived-from=allow-any-ingress"], "revision": "7"}


def verdict_record(direction: str = "INGRESS", match: int = 2, allowed_by: list | None = None, verdict: str = "FORWARDED", **ends) -> dict:
    """Upstream line 2's policy-verdict event with the fields a staged namespace's verdict has."""
    record = copy.deepcopy(upstream(2))
    flow = record["flow"]
    assert flow["event_type"] == {"type": hubble.POLICY_VERDICT}  # the real record this derives from
    flow.update({"traffic_direction": direction, "policy_match_type": match, "verdict": verdict}, **ends)
    if allowed_by is not None:
        flow[f"{direction.lower()}_allowed_by"] = allowed_by
    return record


@pytest.mark.parametrize("record, said", [
    (verdict_record(match=2), ("ingress", "matched")),  # 1.14: no *_allowed_by; a specific rule matched
    (verdict_record(match=2, allowed_by=[ZT_ALLOW_BACKEND]), ("ingress", "matched")),  # 1.15+
    (verdict_record(match=4, allowed_by=[]), ("ingress", "default-allow")),  # 1.15-1.18: the added allow-all, unnamed
    (verdict_record(match=4, allowed_by=[ALLOW_ANY]), ("ingress", "default-allow")),  # newest: the allow-all, unnamed, labelled
    (verdict_record(match=4, allowed_by=[{**ALLOW_ANY, "name": "allow-any-ingress"}]), ("ingress", "default-allow")),  # named: its label
    (verdict_record(match=4, allowed_by=[{"revision": "7"}]), ("ingress", "default-allow")),  # no name: no policy of the user's
    (verdict_record(match=4, allowed_by=[ZT_ALLOW_BACKEND]), ("ingress", "matched")),  # a user's own allow-all rule
    (verdict_record(match=4), ("ingress", None)),  # 1.14: ALL without allowed_by cannot tell
    (verdict_record("EGRESS", 3, []), ("egress", "matched")),  # L4-only match: a rule (upstream line 2 itself)
    (verdict_record(match=1, verdict="DROPPED"), ("ingress", "denied")),
    (verdict_record(match=0, verdict="AUDIT"), ("ingress", "default-allow")),  # policy audit mode's would-drop
], ids=["1.14 rule", "1.15 rule", "1.15 default allow", "newest default allow", "a named default allow", "an entry without a name",
         "user allow-all", "1.14 cannot tell", "L4 only",
        "dropped", "audit"])
def test_a_policy_verdict_says_whether_a_rule_matched_or_only_default_deny_being_off_let_it_pass(record, said):
    assert hubble.policy_verdict(record["flow"]) == said
    assert hubble.policy_verdict(hubble.snake(camel(record)["flow"])) == said


def test_records_that_are_not_policy_verdicts_say_nothing_of_staging():
    assert hubble.policy_verdict(upstream(1)["flow"]) is None  # a trace event
    assert hubble.policy_verdict({**verdict_record()["flow"], "traffic_direction": "TRAFFIC_DIRECTION_UNKNOWN"}) is None


def test_a_connections_verdicts_keep_the_worst_of_its_events(tmp_path):
    lines = [verdict_record(match=2, allowed_by=[ZT_ALLOW_BACKEND]), verdict_record(match=4, allowed_by=[])]
    lines[1]["flow"]["l4"]["TCP"]["source_port"] += 1  # another connection between the same pods
    obs = observed.read([write(tmp_path, *map(json.dumps, lines))])
    (c,) = obs.connections.values()
    assert c.cilium_verdicts == {"ingress": "default-allow"}


# -- the replay of a staged namespace ------------------------------------------------------------------

FRONTEND, BACKEND, DEBUG = pod("frontend", app="frontend"), pod("backend", app="backend"), pod("backend", app="debug")


def staged_dev(tmp_path: Path) -> Path:
    config = stack_config(PROJECT_DIR / "Pulumi.dev.yaml")
    config[f"{PROJECT}:namespaces"] = {"backend": {"enforcement": "staged"}}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def verdict_line(src: dict, dst: dict, port: int, direction: str, match: int, allowed_by: list | None, sport: int, dst_ip: str = "10.0.0.6") -> str:
    flow = json.loads(flow_line(src, dst, dst_ip, port, sport=sport))["flow"]
    flow.update({"event_type": {"type": hubble.POLICY_VERDICT}, "traffic_direction": direction, "policy_match_type": match})
    if allowed_by is not None:
        flow[f"{direction.lower()}_allowed_by"] = allowed_by
    return json.dumps({"flow": flow})


def test_a_staged_namespaces_would_drops_are_decided_by_ciliums_verdicts(tmp_path):
    capture = write(
        tmp_path,
        verdict_line(FRONTEND, BACKEND, 80, "INGRESS", 2, [ZT_ALLOW_BACKEND], 1),  # the declared flow: a rule matched
        verdict_line(DEBUG, BACKEND, 80, "INGRESS", 4, [], 2),  # passed only because backend is staged
        verdict_line(DEBUG, BACKEND, 80, "EGRESS", 4, [], 2),  # the same connection's egress verdict
    )
    r = make_plan("dev", staged_dev(tmp_path), observed=[capture]).observed
    (drop,) = r.would_drop
    assert (drop.src, drop.dst, drop.decided_by) == ("backend/app=debug", "backend", "cilium")
    assert drop.dropped_by == ("decided by Cilium's policy verdicts: the egress of backend/app=debug matched no rule and passed only because "
                               "its namespace is staged: enforced, it drops; the ingress of backend matched no rule and passed only because its "
                               "namespace is staged: enforced, it drops")
    assert (r.staged.by_cilium, r.staged.offline, r.staged.disagreements) == (2, 0, [])


def test_ciliums_verdict_wins_over_the_replay_and_the_disagreement_is_reported(tmp_path):
    capture = write(tmp_path, verdict_line(FRONTEND, BACKEND, 80, "INGRESS", 4, [], 1))
    r = make_plan("dev", staged_dev(tmp_path), observed=[capture]).observed
    (drop,) = r.would_drop
    assert (drop.src, drop.decided_by) == ("frontend", "cilium")
    (line,) = r.staged.disagreements
    assert line.startswith("frontend -> backend:80/TCP: Cilium's policy verdict on the ingress of backend is default-allow, the offline replay says")


@pytest.mark.parametrize("shape", ["trace records", "1.14 verdicts", "Log Analytics rows"])
def test_a_capture_without_usable_verdicts_is_judged_offline_as_enforced_and_says_so(tmp_path, shape):
    if shape == "Log Analytics rows":
        capture = tmp_path / "rows.json"
        capture.write_text(json.dumps([la_row("backend", "backend", "frontend", "frontend", 80)]))
    elif shape == "1.14 verdicts":
        capture = write(tmp_path, verdict_line(DEBUG, BACKEND, 80, "INGRESS", 4, None, 2))
    else:
        capture = write(tmp_path, flow_line(DEBUG, BACKEND, "10.0.0.6", 80, sport=2))
    plan = make_plan("dev", staged_dev(tmp_path), observed=[capture])
    r = plan.observed
    (drop,) = r.would_drop
    assert drop.decided_by == "replay" and "egress of backend/" in drop.dropped_by and "is in default deny (by backend/zt-default-deny)" in drop.dropped_by
    assert (r.staged.by_cilium, r.staged.offline) == (0, 1)
    from zerotrust.report.sections import observed_lines

    assert any(line.startswith("staged namespaces: 0 connections decided by Cilium's policy verdicts, 1 judged offline") for line in observed_lines(plan, False))


def test_connections_outside_staged_namespaces_are_replayed_as_before(tmp_path):
    capture = write(tmp_path, verdict_line(FRONTEND, WORLD, 443, "EGRESS", 4, [], 3, "52.1.1.1"))
    r = make_plan("dev", staged_dev(tmp_path), observed=[capture]).observed
    (drop,) = r.would_drop
    assert drop.decided_by == "replay" and (r.staged.by_cilium, r.staged.offline) == (0, 0)


# -- stage, capture, learn, promote: the shop ------------------------------------------------------------

SHOP_PODS = {name: pod(ns, app=name) for name, ns in (
    ("web", "shop-web"), ("api", "shop-core"), ("orders", "shop-core"), ("payments", "shop-core"), ("worker", "shop-core"),
    ("postgres", "shop-data"), ("redis", "shop-data"))}
PROMETHEUS = pod("monitoring", **{"app.kubernetes.io/name": "prometheus"})
GRAFANA = pod("ops", app="grafana")
API_SERVER = {"identity": 7, "labels": ["reserved:kube-apiserver", "reserved:world"]}


def shop_capture(tmp_path: Path, name: str, grafana_matched: bool) -> Path:
    """What Cilium reports of a day of the shop with shop-core staged: every declared connection of shop-core
    matches a rule at each end Cilium enforces; Grafana's calls to the API match one only once a flow allows them."""
    rule = (2, [ZT_ALLOW_BACKEND])
    connections = [  # (source, destination, address, port, egress verdict, ingress verdict, extra fields)
        (SHOP_PODS["web"], SHOP_PODS["api"], "10.0.1.10", 8080, rule, rule, {}),
        (PROMETHEUS, SHOP_PODS["api"], "10.0.1.10", 9090, None, rule, {}),
        (SHOP_PODS["api"], SHOP_PODS["orders"], "10.0.1.11", 8080, rule, rule, {}),
        (SHOP_PODS["api"], SHOP_PODS["payments"], "10.0.1.12", 8080, rule, rule, {}),
        (SHOP_PODS["orders"], SHOP_PODS["postgres"], "10.0.2.10", 5432, rule, rule, {}),
        (SHOP_PODS["orders"], SHOP_PODS["redis"], "10.0.2.11", 6379, rule, rule, {}),
        (SHOP_PODS["worker"], SHOP_PODS["redis"], "10.0.2.11", 6379, rule, rule, {}),
        (SHOP_PODS["payments"], WORLD, "198.51.100.10", 443, rule, None, {}),
        (SHOP_PODS["payments"], WORLD, "54.1.1.1", 443, rule, None, {"destination_names": ["api.stripe.com"]}),
        (SHOP_PODS["orders"], API_SERVER, "20.1.2.3", 443, rule, None, {}),
        (GRAFANA, SHOP_PODS["api"], "10.0.1.10", 8080, None, rule if grafana_matched else (4, []), {}),
    ]
    lines = []
    for sport, (src, dst, ip, port, egress, ingress, extra) in enumerate(connections, 40000):
        lines.append(flow_line(src, dst, ip, port, sport=sport, **extra))
        for direction, said in (("EGRESS", egress), ("INGRESS", ingress)):
            if said is not None:
                record = json.loads(verdict_line(src, dst, port, direction, said[0], said[1], sport, ip))
                record["flow"].update(extra)
                lines.append(json.dumps(record))
    request = copy.deepcopy(upstream(10))  # the HTTP request web makes of api, which its HTTP rules allow
    request["flow"]["source"], request["flow"]["destination"] = SHOP_PODS["web"], SHOP_PODS["api"]
    request["flow"]["l4"]["TCP"]["destination_port"] = 8080
    request["flow"]["l7"]["http"]["url"] = "http://api.shop-core:8080/api/items?page=2"
    lines.append(json.dumps(request))
    return write(tmp_path, *lines, name=name)


def test_stage_capture_learn_promote_on_the_shop_ends_enforced_with_nothing_dropped(tmp_path, capsys):
    from tests.capture import SHOP
    from zerotrust.__main__ import main

    config = stack_config(SHOP)
    config[f"{PROJECT}:namespaces"] = {"shop-core": {"enforcement": "staged"}}
    stack = tmp_path / "Pulumi.shop.yaml"
    stack.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    first = shop_capture(tmp_path, "day1.jsonl", grafana_matched=False)

    # 1. staged: Cilium's verdicts say what enforcing shop-core would drop
    plan = make_plan("shop", stack, observed=[first])
    assert [(d.src, d.dst, d.port, d.decided_by) for d in plan.observed.would_drop] == [("ops/app=grafana", "api", 8080, "cilium")]
    assert plan.observed.undecided == () and plan.matrix.staging.namespaces == ("shop-core",)

    # 2. promote refuses, naming the connection and the way on
    assert main(["promote", "--stack", "shop", "--stack-file", str(stack), "--namespace", "shop-core", "--observed", str(first)]) == 1
    out = capsys.readouterr().out
    assert "would drop once enforced: ops/app=grafana -> api:8080/TCP" in out and "shop-core stays staged" in out

    # 3. learn declares it from the staged would-drop
    assert main(["learn", "--stack", "shop", "--stack-file", str(stack), "--flows", str(first), "--write"]) == 0
    learned = yaml.safe_load(stack.read_text())["config"]
    assert {"from": "ops-grafana", "to": "api", "port": 8080, "protocol": "TCP"} in learned[f"{PROJECT}:flows"]
    capsys.readouterr()

    # 4. after pulumi up, the next day's verdicts match a rule everywhere: promote writes the change
    second = shop_capture(tmp_path, "day2.jsonl", grafana_matched=True)
    assert main(["promote", "--stack", "shop", "--stack-file", str(stack), "--namespace", "shop-core", "--observed", str(second), "--write"]) == 0
    assert yaml.safe_load(stack.read_text())["config"][f"{PROJECT}:namespaces"]["shop-core"] == {"enforcement": "enforced"}

    # 5. enforced: nothing staged, the same capture replayed offline drops nothing, the plan holds
    final = make_plan("shop", stack, observed=[second])
    assert final.config.staged_namespaces == () and final.matrix.staging is None
    assert (final.observed.would_drop, final.observed.undecided) == ((), ())
    assert final.matrix.ok and final.guardrails.ok


def test_promote_refuses_a_namespace_that_is_not_staged_or_not_the_stacks_and_a_capture_without_it(tmp_path, capsys):
    from zerotrust.__main__ import main

    stack = staged_dev(tmp_path)
    capture = write(tmp_path, flow_line(FRONTEND, WORLD, "52.1.1.1", 443))
    base = ["promote", "--stack", "dev", "--stack-file", str(stack), "--observed", str(capture)]
    assert main([*base, "--namespace", "frontend"]) == 2
    assert capsys.readouterr().err == "error: --namespace frontend: already enforced; staged namespaces: backend\n"
    assert main([*base, "--namespace", "shop"]) == 2
    assert capsys.readouterr().err == "error: --namespace shop: not a namespace of this stack; its namespaces are: backend, frontend\n"
    assert main([*base, "--namespace", "backend"]) == 1
    assert "the capture holds no connection of backend: nothing shows that enforcing it drops nothing" in capsys.readouterr().out
    before = stack.read_text()
    assert main([*base, "--namespace", "backend", "--write"]) == 1 and stack.read_text() == before


def test_promote_without_write_prints_the_change_and_with_an_inherited_staging_writes_the_namespaces_own_setting(tmp_path, capsys):
    from zerotrust.__main__ import main

    config = stack_config(PROJECT_DIR / "Pulumi.dev.yaml")
    config[f"{PROJECT}:zeroTrust"] = {"enforcement": "staged"}
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text("# the dev stack, staged\n" + yaml.safe_dump({"config": config}))
    capture = write(tmp_path, verdict_line(FRONTEND, BACKEND, 80, "INGRESS", 2, [ZT_ALLOW_BACKEND], 1),
                    verdict_line(FRONTEND, BACKEND, 80, "EGRESS", 2, [ZT_ALLOW_BACKEND], 1))
    args = ["promote", "--stack", "dev", "--stack-file", str(stack), "--namespace", "backend", "--observed", str(capture)]
    before = stack.read_text()
    assert main(args) == 0 and stack.read_text() == before
    out = capsys.readouterr().out
    assert "1 connections in the capture (1 decided by Cilium's policy verdicts, 0 judged offline)" in out
    assert f"  {PROJECT}:namespaces:\n    backend:\n      enforcement: enforced\n" in out
    assert main([*args, "--write"]) == 0
    after = stack.read_text()
    assert after.startswith("# the dev stack, staged\n")
    cfg = make_plan("dev", stack).config
    assert cfg.staged_namespaces == ("frontend",) and cfg.enforcement("backend") == "enforced"


# -- promotion, unit by unit -------------------------------------------------------------------------------


def _row(*namespaces: str | None):
    from policies.observed.records import End
    from policies.observed.replay import Replayed

    ends = None if namespaces == (None,) else tuple(End(namespace=n) if n else End(reserved="world") for n in namespaces)
    return Replayed("a", "b", 80, "TCP", 1, "t", "t", "a rule", ends=ends)


def test_promotion_weighs_only_the_rows_with_an_end_in_the_namespace_dropped_or_undecided():
    from types import SimpleNamespace

    from policies.observed import promote
    from policies.observed.records import End, Observations

    obs = Observations()
    obs.add(End(namespace="backend"), End(namespace="frontend"), 80, "TCP", "t", None, 1)
    inside, across, elsewhere, outside, unread = _row("backend", "backend"), _row("frontend", "backend"), _row("shop", "shop"), _row(None, "shop"), _row(None)
    report = SimpleNamespace(would_drop=(inside, elsewhere, unread), undecided=(across, outside))
    p = promote.check(report, obs, "backend")
    assert (p.connections, p.would_drop, p.undecided, p.ready) == (1, (inside,), (across,), False)
    assert promote.check(SimpleNamespace(would_drop=(elsewhere,), undecided=(outside,)), obs, "backend").ready


def test_promoting_a_namespace_keeps_the_other_namespaces_and_its_own_other_settings():
    from policies.observed import promote

    text = (f"config:\n  {PROJECT}:namespaces:\n    frontend:\n      enforcement: staged\n"
            f"    backend:\n      enforcement: staged\n      create: false  # owned by the platform team\n")
    config = yaml.safe_load(promote.promoted_text(text, "backend"))["config"][f"{PROJECT}:namespaces"]
    assert config == {"frontend": {"enforcement": "staged"}, "backend": {"enforcement": "enforced", "create": False}}
    assert "# owned by the platform team" in promote.promoted_text(text, "backend")


@pytest.mark.parametrize("seen, kept", [
    (("matched", "denied"), "denied"), (("denied", "matched"), "denied"), (("denied", "default-allow"), "denied"),
    ((None, "default-allow"), "default-allow"), (("default-allow", None), "default-allow"), (("matched", None), None),
])
def test_a_connections_cilium_verdict_per_direction_is_the_worst_it_was_given(seen, kept):
    from policies.observed.records import keep_worst

    verdicts: dict = {}
    for verdict in seen:
        keep_worst(verdicts, "ingress", verdict)
    assert verdicts == {"ingress": kept}


# -- a staged side decided by Cilium's verdict, unit by unit ------------------------------------------------


def _decide(said: dict, egress_allowed: bool = True, egress_exact: bool = True, staged=("backend", "frontend")):
    from policies.observed.staged import StagedTally, decide
    from policies.verdict import Endpoint
    from policies.verdict.view import Side, Verdict

    ends = (Endpoint("frontend", {"app": "frontend"}), Endpoint("backend", {"app": "backend"}))
    egress = Side(egress_allowed, "no rule allows it" if not egress_allowed else "allowed", exact=egress_exact)
    v = Verdict(egress_allowed, "offline", egress, Side(True, "allowed"), exact=egress_exact)
    tally = StagedTally()
    return decide(ends, ("frontend", "backend"), v, said, staged, tally, "frontend -> backend:80/TCP"), tally


def test_a_connection_every_staged_side_of_which_matched_a_rule_is_allowed_exactly_by_cilium():
    assert _decide({"egress": "matched", "ingress": "matched"})[0] == (
        True, "decided by Cilium's policy verdicts: every staged side matched a rule", True, "cilium")


def test_a_side_cilium_dropped_and_a_side_judged_offline_both_give_their_reasons():
    (allowed, why, exact, by), tally = _decide({"ingress": "denied"}, egress_allowed=False)
    assert (allowed, exact, by, tally.by_cilium, tally.offline) == (False, True, "cilium", 1, 1)
    assert why == ("decided by Cilium's policy verdicts: egress no rule allows it; "
                   "the ingress of backend was dropped by a policy on the cluster")


def test_a_side_judged_offline_that_is_not_exact_leaves_the_connection_inexact():
    assert _decide({"ingress": "matched"}, egress_allowed=False, egress_exact=False)[0][2] is False
    assert _decide({"ingress": "matched"}, egress_allowed=False, egress_exact=True)[0][2] is True


def test_each_connection_judged_offline_counts_once():
    from policies.observed.staged import StagedTally, decide
    from policies.verdict import Endpoint
    from policies.verdict.view import Side, Verdict

    ends = (Endpoint("frontend", {"app": "frontend"}), Endpoint("backend", {"app": "backend"}))
    v = Verdict(True, "allowed", Side(True, "allowed"), Side(True, "allowed"))
    tally = StagedTally()
    for _ in range(2):
        assert decide(ends, ("frontend", "backend"), v, {}, ("backend",), tally, "c") == (True, "allowed", True, "replay")
    assert (tally.offline, tally.by_cilium) == (2, 0)

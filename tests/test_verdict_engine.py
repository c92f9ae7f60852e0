"""The engine over a set of policies: what one rejected policy leaves in force, and whether any rule holds
something only the live cluster decides."""

from __future__ import annotations

import pytest

from policies.verdict import Engine
from tests.test_verdict import BACKEND, FRONTEND, FRONTEND_PEER, allow_in, cnp

ALLOW = allow_in("backend", {"app": "backend"}, FRONTEND_PEER)
BAD_OPERATOR = cnp("backend", "broken", endpointSelector={"matchExpressions": [{"key": "app", "operator": "Equals"}]}, ingress=[{}])
TO_NODES = cnp("frontend", "nodes", endpointSelector={}, egress=[{"toNodes": [{"matchLabels": {"agentpool": "system"}}]}])


@pytest.mark.parametrize("rejected", [BAD_OPERATOR, TO_NODES], ids=["Cilium rejects it", "the agent lacks node selector labels"])
def test_a_rejected_policy_leaves_the_policies_after_it_in_force(rejected):
    engine = Engine([rejected, ALLOW, cnp("backend", "deny", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER]}])])
    assert [ref for ref, _ in engine.rejected] == [f"{rejected['metadata']['namespace']}/{rejected['metadata']['name']}"]
    v = engine.decide(FRONTEND, BACKEND, 80, "TCP")
    assert not v.allowed and "denied by backend/deny" in v.reason


@pytest.mark.parametrize("rule", [
    {"fromEndpoints": [FRONTEND_PEER], "authentication": {"mode": "required"}},
    {"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "http"}]}]},
    {"fromEndpoints": [FRONTEND_PEER], "toPorts": [{"ports": [{"port": "80"}], "rules": {"http": [{"method": "GET"}]}}]},
    {"fromGroups": [{"aws": {"securityGroupsIds": ["sg-1"]}}]},
], ids=["mutual authentication", "a named port", "HTTP rules", "cloud groups"])
def test_a_rule_only_the_live_cluster_decides_marks_the_engine_as_having_offline_parts(rule):
    assert Engine([cnp("backend", "p", endpointSelector={}, ingress=[rule])]).has_offline_parts
    assert not Engine([ALLOW]).has_offline_parts


def test_a_tofqdns_rule_marks_the_engine_as_having_offline_parts():
    egress = [{"toFQDNs": [{"matchName": "api.example.com"}], "toPorts": [{"ports": [{"port": "443"}]}]}]
    assert Engine([cnp("frontend", "p", endpointSelector={}, egress=egress)]).has_offline_parts


NO_DEFAULT_DENY = cnp("backend", "open", endpointSelector={}, ingress=[{"fromEndpoints": [{"matchLabels": {"app": "other"}}]}],
                      enableDefaultDeny={"ingress": False, "egress": False})
DENY_FRONTEND = cnp("backend", "deny", endpointSelector={}, ingressDeny=[{"fromEndpoints": [FRONTEND_PEER]}])
DENY_OTHER = cnp("backend", "deny-other", endpointSelector={}, ingressDeny=[{"fromEndpoints": [{"matchLabels": {"app": "other"}}]}])
DENY_PORT_TO_ALL = cnp("backend", "deny-80", endpointSelector={}, ingressDeny=[{"toPorts": [{"ports": [{"port": "80"}]}]}])
EGRESS_ONLY_ELSEWHERE = cnp("frontend", "egress", endpointSelector={}, egress=[{"toEndpoints": [{"matchLabels": {"app": "db"}}]}])


@pytest.mark.parametrize("policies, expected", [
    ([], True),
    ([ALLOW], True),
    ([ALLOW, DENY_FRONTEND], False),
    ([ALLOW, DENY_OTHER], True),
    ([ALLOW, DENY_PORT_TO_ALL], False),
    ([NO_DEFAULT_DENY], True),
    ([cnp("backend", "deny-all", endpointSelector={}, ingress=[{}])], False),
    ([ALLOW, EGRESS_ONLY_ELSEWHERE], False),
], ids=["no policy", "an allow", "a deny past an allow", "a deny of another peer", "a deny of the port to every peer", "default deny off", "default deny", "the source's egress"])
def test_the_matrixs_fast_path_gives_the_verdict_decide_gives(policies, expected):
    engine = Engine(policies)
    assert engine.decide(FRONTEND, BACKEND, 80, "TCP").allowed is expected
    assert engine.allowed(engine.intern(FRONTEND), engine.intern(BACKEND), 80, "TCP") is expected


def test_an_unenforced_side_names_the_rejected_policy_of_its_own_namespace_only():
    broken_backend = cnp("backend", "broken", endpointSelector={"matchExpressions": [{"key": "app", "operator": "Equals"}]}, ingress=[{}])
    broken_elsewhere = cnp("frontend", "broken-too", endpointSelector={"matchExpressions": [{"key": "x", "operator": "Equals"}]}, ingress=[{}])
    reason = Engine([broken_backend, broken_elsewhere]).decide(FRONTEND, BACKEND, 80, "TCP").ingress.reason
    assert "backend/broken" in reason and "frontend/broken-too" not in reason

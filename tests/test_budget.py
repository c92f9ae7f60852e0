"""The datapath budget: policy-map entries per workload, estimated and guarded."""

from __future__ import annotations

import json

from policies import guardrails as g
from policies.budget import estimate
from policies.cilium_versions import POLICY_MAP_ENTRIES
from policies.verdict import Endpoint, Engine, entity
from zerotrust.__main__ import main


def deployment(name: str, namespace: str = "shop") -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": "x"}]}}}}


def cluster_wide_ingress(target: str, ports: int, namespace: str = "shop") -> dict:
    rule = {"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": str(8000 + i), "protocol": "TCP"} for i in range(ports)]}]}
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "open", "namespace": namespace},
            "spec": {"endpointSelector": {"matchLabels": {"app": target}}, "ingress": [rule]}}


def resources(objects: list[dict]) -> list[g.Resource]:
    return [g.Resource(f"kubernetes:{o['apiVersion']}:{o['kind']}", o["metadata"]["name"], o) for o in objects]


def only(rule: str) -> dict[str, str]:
    return {r.name: "disabled" for r in g.RULES} | {rule: g.BY_NAME[rule].level}


def test_entries_are_identities_times_ports_per_rule():
    policy = cluster_wide_ingress("w0", ports=3)
    engine = Engine([policy], endpoints=[Endpoint("shop", {"app": f"w{i}"}) for i in range(10)] + [entity("host")])
    # cluster: the 10 pods and the host identity, on 3 ports
    assert engine.policy_map_entries(Endpoint("shop", {"app": "w0"})) == (10 + 1) * 3


def test_a_port_range_counts_the_aligned_blocks_it_splits_into():
    rule = {"fromEndpoints": [{}], "toPorts": [{"ports": [{"port": "8000", "endPort": 8010, "protocol": "TCP"}]}]}
    policy = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "shop"},
              "spec": {"endpointSelector": {}, "ingress": [rule]}}
    engine = Engine([policy], endpoints=[Endpoint("shop", {"app": "a"})])
    assert engine.policy_map_entries(Endpoint("shop", {"app": "a"})) == 3  # 8000-8007, 8008-8009, 8010


def test_a_workload_admitting_the_cluster_on_50_ports_in_a_400_workload_stack_fails_the_budget():
    objects = [deployment(f"w{i}") for i in range(400)] + [cluster_wide_ingress("w0", ports=50)]
    b = estimate(objects)
    assert b.workloads[0].workload == "shop/w0" and b.workloads[0].share >= 0.8 and b.identities == 400
    (v,) = g.evaluate(resources(objects), only("policy-map-budget")).violations
    assert v.level == "mandatory" and v.resource == "Deployment shop/w0"
    assert f"of the {POLICY_MAP_ENTRIES} each endpoint has on AKS" in v.message


def test_half_the_budget_is_a_warning_not_a_failure():
    objects = [deployment(f"w{i}") for i in range(200)] + [cluster_wide_ingress("w0", ports=50)]
    assert 0.5 <= estimate(objects).workloads[0].share < 0.8
    assert g.evaluate(resources(objects), only("policy-map-budget")).violations == ()
    (v,) = g.evaluate(resources(objects), only("policy-map-budget-warning")).violations
    assert v.level == "advisory" and v.resource == "Deployment shop/w0"


def test_the_plan_reports_the_largest_policy_maps(capsys):
    assert main(["plan", "--stack", "dev", "--format", "json"]) == 0
    b = json.loads(capsys.readouterr().out)["budget"]
    assert b["limit"] == POLICY_MAP_ENTRIES and b["identities"] == 2
    # frontend: egress to backend on 80 and to kube-dns on 53/UDP and 53/TCP
    assert {"workload": "frontend/frontend", "entries": 3, "share": round(3 / POLICY_MAP_ENTRIES, 4)} in b["top"]

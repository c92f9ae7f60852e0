"""Replaying captured traffic against a plan: ends named as Cilium means them, and verdicts the records decide."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.observed.ends import owner_of
from policies.observed.replay import Replayed
from tests.capture import (
    DEV,
    HOST,
    HUBBLE,
    SHOP,
    WORLD,
    camel,
    flow,
    flow_line,
    la_row,
    pod,
    replay_config,
    stack_config,

    write,
)
from tests.conftest import markdown_tokens
from zerotrust.__main__ import main
from zerotrust.plan import make_plan

DEV_CONFIG, SHOP_CONFIG = stack_config(DEV), stack_config(SHOP)
FRONTEND, BACKEND = pod("frontend", app="frontend"), pod("backend", app="backend")
PAYMENTS, WEB, API = pod("shop-core", app="payments"), pod("shop-web", app="web"), pod("shop-core", app="api")
CANARY = pod("shop-core", app="payments", track="canary")  # workload payments too: one more label, another identity
DNS = {"namespace": "kube-system", "labels": ["k8s:k8s-app=kube-dns"], "pod_name": "coredns-5d78c9869d-xq2mz"}


def rows(report) -> list[tuple[str, str, int, str]]:
    return [(d.src, d.dst, d.port, d.layer) for d in report.would_drop]


def undecided(report) -> list[tuple[str, str, int, str]]:
    return [(d.src, d.dst, d.port, d.layer) for d in report.undecided]


# -- ends ----------------------------------------------------------------------------------------------


def test_the_nodes_own_probe_of_a_pod_is_allowed_as_cilium_allows_it(tmp_path):
    capture = write(tmp_path, flow_line(HOST, BACKEND, "10.224.0.62", 80, src_ip="10.224.0.4"))
    _, r = replay_config(DEV_CONFIG, capture)
    assert r.would_drop == () and r.undecided == () and r.unattributed == ()


def test_a_pod_to_pod_request_the_proxy_reports_as_world_is_judged_between_the_two_workloads(tmp_path):
    record = flow(FRONTEND, {"identity": 2, "namespace": "backend", "labels": ["reserved:world"], "pod_name": "backend-7c9f8d6b5c-q4z8w"},
                  "10.224.0.62", 80, Type="L7", l7={"type": "REQUEST", "http": {"method": "GET", "url": "http://backend/"}})
    _, r = replay_config(DEV_CONFIG, write(tmp_path, json.dumps({"flow": record})))
    assert r.would_drop == () and r.undecided == () and r.never_observed == ()


@pytest.mark.parametrize(
    "pod_name, owner",
    [
        ("backend-7c9f8d6b5c-q4z8w", "backend"),  # Deployment
        ("backend-q4z8w", "backend"),  # DaemonSet, Job, ReplicaSet
        ("backend-0", "backend"),  # StatefulSet
        ("backend-api-7c9f8d6b5c-q4z8w", "backend-api"),
        ("backend-v2-q4z8w", "backend-v2"),  # a DaemonSet of backend-v2, or a Deployment of backend: the longest name wins
        ("backend-aeiou", None),  # vowels are never in generated suffixes
        ("backends-0", None),
    ],
)
def test_a_pod_name_maps_to_the_workload_that_owns_pods_named_like_it(pod_name, owner):
    assert owner_of(pod_name, ["backend", "backend-api", "backend-v2"]) == owner


def test_field_masked_ends_are_named_by_their_pod_names_and_an_empty_end_is_unattributed_never_judged(tmp_path):
    masked = {"namespace": "frontend", "pod_name": "frontend-6f5845c4b7-7r5r6"}
    capture = write(
        tmp_path,
        flow_line(masked, {"namespace": "backend", "pod_name": "backend-6f5845c4b7-xk2lp"}, "10.224.0.62", 80, sport=1),
        flow_line({}, BACKEND, "10.224.0.62", 80, sport=2, src_ip="10.224.0.77"),
    )
    _, r = replay_config(DEV_CONFIG, capture)
    assert r.would_drop == () and r.never_observed == ()
    (u,) = r.unattributed
    assert (u.end, u.count) == ("unattributed 10.224.0.77", 1) and "no identity" in u.why


@pytest.mark.parametrize("config, address, inside", [("dev", "10.224.0.9", "the node VNet"), ("shop", "10.244.3.7", "podCidr"),
                                                      ("shop", "10.0.12.1", "serviceCidr")])
def test_an_address_inside_the_clusters_ranges_is_never_world_nor_judged(tmp_path, config, address, inside):
    src = FRONTEND if config == "dev" else PAYMENTS
    _, r = replay_config(DEV_CONFIG if config == "dev" else SHOP_CONFIG, write(tmp_path, flow_line(src, WORLD, address, 8443)))
    assert r.would_drop == () and r.undecided == ()
    (u,) = r.unattributed
    assert u.end == f"unattributed {address}" and inside in u.why


def test_the_coredns_workload_in_kube_system_is_kube_dns(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([la_row("frontend", "frontend", "kube-system", "coredns", 53)]))
    _, r = replay_config(DEV_CONFIG, path)
    assert r.would_drop == () and r.unknown == () and r.unattributed == ()


def test_a_declared_flow_to_an_entity_peer_is_observed_through_the_identity_the_record_names(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="orders"), {"identity": 7, "labels": ["reserved:kube-apiserver"]}, "20.1.2.3", 443))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert "orders -> api-server:443/TCP" not in r.never_observed and "worker -> api-server:443/TCP" in r.never_observed


def test_a_call_to_the_api_server_on_aks_is_allowed_by_a_cidr_flow_covering_its_address(tmp_path):
    config = {**SHOP_CONFIG, "zero-trust-aks:peers": {**SHOP_CONFIG["zero-trust-aks:peers"], "aks-api": {"cidrs": ["20.1.0.0/16"]}},
              "zero-trust-aks:flows": [*SHOP_CONFIG["zero-trust-aks:flows"], {"from": "web", "to": "aks-api", "port": 443}]}
    apiserver = {"identity": 16777217, "labels": ["cidr:20.1.0.0/16", "reserved:kube-apiserver", "reserved:world"]}
    capture = write(tmp_path, flow_line(WEB, apiserver, "20.1.2.3", 443), flow_line(WEB, apiserver, "20.9.2.3", 443, sport=2))
    _, r = replay_config(config, capture)
    assert rows(r) == [("web", "api-server", 443, "L3/L4")] and r.would_drop[0].ends[1].ip == "20.9.2.3"
    assert "web -> aks-api:443/TCP" not in r.never_observed


def test_a_declared_flow_to_an_entity_peer_is_observed_through_an_address_the_entity_holds(tmp_path):
    config = {**DEV_CONFIG, "zero-trust-aks:peers": {"internet": {"entity": "world"}},
              "zero-trust-aks:flows": [*DEV_CONFIG["zero-trust-aks:flows"], {"from": "frontend", "to": "internet", "port": 443}]}
    _, r = replay_config(config, write(tmp_path, flow_line(FRONTEND, WORLD, "52.1.1.1", 443)))
    assert r.never_observed == ("frontend -> backend:80/TCP",)


def test_a_pod_of_a_managed_namespace_that_matches_no_workload_is_reported_and_its_traffic_judged_as_it_is(tmp_path):
    _, r = replay_config(DEV_CONFIG, write(tmp_path, flow_line(pod("frontend", app="debug"), BACKEND, "10.224.0.62", 80)))
    assert r.unknown == ("frontend/app=debug",)
    assert rows(r) == [("frontend/app=debug", "backend", 80, "L3/L4")]


def test_a_pod_of_an_unmanaged_namespace_without_labels_where_a_peer_selects_by_label_is_unattributed(tmp_path):
    capture = write(tmp_path, flow_line({"namespace": "ingress-nginx", "pod_name": "ingress-nginx-controller-5d88495688-6lgx8"}, WEB,
                                        "10.244.0.8", 8080))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert r.would_drop == () and [u.end for u in r.unattributed] == ["ingress-nginx/ingress-nginx-controller-5d88495688-6lgx8"]
    assert "ingress-controller selects pods of ingress-nginx by label" in r.unattributed[0].why


def test_an_outside_address_is_judged_exactly_against_an_address_peer_and_its_except_ranges(tmp_path):
    capture = write(
        tmp_path,
        flow_line(PAYMENTS, WORLD, "198.51.100.7", 443, sport=1, destination_names=["pay.example.net"]),  # inside card-processor
        flow_line(PAYMENTS, WORLD, "198.51.100.200", 443, sport=2, destination_names=["pay.example.net"]),  # in its except range
    )
    _, r = replay_config(SHOP_CONFIG, capture)
    assert "payments -> card-processor:443/TCP" not in r.never_observed
    assert rows(r) == [("payments", "world 198.51.100.200 (pay.example.net)", 443, "L3/L4")] and r.undecided == ()
    assert "covers" not in r.would_drop[0].dropped_by


# -- toFQDNs decided from the names a record carries -----------------------------------------------------


def test_a_declared_fqdn_flow_whose_traffic_carries_its_name_is_allowed_with_nothing_undecided(tmp_path):
    capture = write(tmp_path, flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, destination_names=["api.stripe.com."]))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert r.would_drop == () and r.undecided == () and "payments -> api.stripe.com:443/TCP" not in r.never_observed


def test_an_outside_call_under_a_name_no_fqdn_flow_declares_would_be_dropped(tmp_path):
    capture = write(tmp_path, flow_line(PAYMENTS, WORLD, "54.9.9.9", 443, destination_names=["api.evil.example"]))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert rows(r) == [("payments", "world 54.9.9.9 (api.evil.example)", 443, "L3/L4")]
    assert "which no toFQDNs entry names" in r.would_drop[0].dropped_by


def test_an_outside_call_without_a_recorded_name_is_undecided_where_an_fqdn_rule_could_select_it(tmp_path):
    _, r = replay_config(SHOP_CONFIG, write(tmp_path, flow_line(PAYMENTS, WORLD, "54.1.1.1", 443)))
    assert r.would_drop == () and undecided(r) == [("payments", "world 54.1.1.1", 443, "L3/L4")]
    assert "no DNS name was recorded for 54.1.1.1" in r.undecided[0].dropped_by


def test_an_address_only_another_pod_looked_up_is_selected_while_that_answer_is_cached_so_never_dropped_nor_allowed(tmp_path):
    capture = write(
        tmp_path,
        flow_line(CANARY, WORLD, "54.1.1.1", 443, sport=1, destination_names=["api.stripe.com"]),
        flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, sport=2),
    )
    _, r = replay_config(SHOP_CONFIG, capture)
    assert r.would_drop == () and [(d.src, d.dst) for d in r.undecided] == [("payments", "world 54.1.1.1")]
    assert "only through another pod's lookup" in r.undecided[0].dropped_by


def test_an_address_counts_as_another_pods_lookup_only_for_pods_that_did_not_look_it_up_themselves(tmp_path):
    capture = write(
        tmp_path,
        flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, sport=1, destination_names=["api.stripe.com"]),
        flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, sport=2),
        flow_line(CANARY, WORLD, "54.1.1.1", 443, sport=3, src_ip="10.244.0.9"),
    )
    _, r = replay_config(SHOP_CONFIG, capture)
    why = {dict(d.ends[0].labels).get("track", "stable"): d.dropped_by for d in r.undecided}  # both are workload payments
    assert sorted(why) == ["canary", "stable"]
    assert "only through another pod's lookup" in why["canary"]
    assert "only through another pod's lookup" not in why["stable"] and "no DNS name was recorded" in why["stable"]


def test_without_a_dns_proxy_in_the_capture_no_name_is_another_pods_lookup(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="orders"), WORLD, "54.1.1.1", 443, destination_names=["api.stripe.com"]))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert rows(r) == [("orders", "world 54.1.1.1 (api.stripe.com)", 443, "L3/L4")]  # orders declares no such flow


# -- HTTP and DNS requests against the rules that will apply -----------------------------------------------


def http_line(src: dict, dst: dict, method: str, path: str, sport: int) -> str:
    record = flow(src, dst, "10.244.0.9", 8080, sport=sport, Type="L7",
                  l7={"type": "REQUEST", "http": {"method": method, "url": f"http://api.shop-core:8080{path}", "protocol": "HTTP/1.1"}})
    del record["l4"]["TCP"]["flags"]
    return json.dumps({"flow": record})


def test_requests_the_flows_http_rules_admit_are_allowed_exactly(tmp_path):
    capture = write(tmp_path, http_line(WEB, API, "GET", "/api/items?page=2", 1), http_line(WEB, API, "POST", "/api/orders", 2))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert r.would_drop == () and r.undecided == () and "web -> api:8080/TCP" not in r.never_observed


def test_a_request_the_http_rules_reject_is_a_drop_at_http_naming_the_request(tmp_path):
    capture = write(tmp_path, http_line(WEB, API, "GET", "/api/items", 1), http_line(WEB, API, "DELETE", "/api/orders/7", 2),
                    http_line(WEB, API, "GET", "/admin", 3))
    _, r = replay_config(SHOP_CONFIG, capture)
    (d,) = r.would_drop
    assert (d.src, d.dst, d.layer, d.requests) == ("web", "api", "HTTP", ("DELETE /api/orders/7", "GET /admin"))
    assert d.dropped_by.startswith("the HTTP rules reject these requests (") and "zt-allow.api" in d.dropped_by


def test_a_connection_through_http_rules_without_any_request_in_the_capture_is_undecided(tmp_path):
    _, r = replay_config(SHOP_CONFIG, write(tmp_path, flow_line(WEB, API, "10.244.0.9", 8080)))
    assert r.would_drop == () and undecided(r) == [("web", "api", 8080, "HTTP")]
    assert r.undecided[0].dropped_by.startswith("allowed at L3/L4 through HTTP rules, and the capture holds no HTTP request of it: ")


def test_a_request_only_a_header_rule_could_admit_is_undecided_where_the_records_list_no_headers(tmp_path):
    by_tenant = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "tenants", "namespace": "shop-core"},
                 "spec": {"endpointSelector": {"matchLabels": {"app": "api"}}, "ingress": [{
                     "fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop-web", "app": "web"}}],
                     "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}], "rules": {"http": [{"method": "GET", "headers": ["X-Tenant: blue"]}]}}]}]}}
    capture = write(tmp_path, http_line(WEB, API, "GET", "/health", 1), http_line(WEB, API, "GET", "/api/items", 2))
    _, r = replay_config(SHOP_CONFIG, capture, others=(by_tenant,))
    assert r.would_drop == ()
    (u,) = r.undecided
    assert (u.src, u.dst, u.port, u.layer, u.requests) == ("web", "api", 8080, "HTTP", ("GET /health",))
    assert u.dropped_by.startswith("the records do not show what these requests' HTTP rules match on: ")


def test_http_requests_in_camel_case_records_are_judged_the_same(tmp_path):
    line = json.dumps(camel(json.loads(http_line(WEB, API, "PUT", "/api/orders", 1))))
    _, r = replay_config(SHOP_CONFIG, write(tmp_path, line))
    assert [(d.layer, d.requests) for d in r.would_drop] == [("HTTP", ("PUT /api/orders",))]


def dns_line(src: dict, name: str, sport: int) -> str:
    record = flow(src, DNS, "10.244.0.10", 53, proto="UDP", sport=sport, Type="L7",
                  l7={"type": "REQUEST", "dns": {"query": name + ".", "observation_source": "proxy", "qtypes": ["A"]}})
    return json.dumps({"flow": record})


def test_a_lookup_the_dns_rules_refuse_is_a_drop_at_dns(tmp_path):
    capture = write(tmp_path, dns_line(PAYMENTS, "api.stripe.com", 1), dns_line(PAYMENTS, "orders.shop-core.svc.cluster.local", 2),
                    dns_line(PAYMENTS, "exfil.attacker.example", 3))
    _, r = replay_config(SHOP_CONFIG, capture)
    (d,) = r.would_drop
    assert (d.src, d.dst, d.port, d.layer, d.requests) == ("payments", "kube-dns", 53, "DNS", ("exfil.attacker.example",))
    assert d.dropped_by.startswith("the DNS rules refuse these lookups (")


def test_without_acns_fqdn_security_no_dns_rule_refuses_a_lookup(tmp_path):
    _, r = replay_config(DEV_CONFIG, write(tmp_path, dns_line(FRONTEND, "anything.example", 1)))
    assert r.would_drop == ()


# -- the report ------------------------------------------------------------------------------------------


def test_replaying_the_dev_capture_names_the_undeclared_outside_call_the_plan_would_drop():
    plan = make_plan("dev", observed=[HUBBLE])
    r = plan.observed
    assert r is not None and not plan.ok
    assert rows(r) == [("frontend", "world 20.50.2.40 (api.example.com)", 443, "L3/L4")]
    assert "egress of frontend/frontend is in default deny" in r.would_drop[0].dropped_by
    assert r.never_observed == () and r.undecided == () and r.unknown == ()


def test_the_plan_command_exits_one_when_observed_traffic_would_be_dropped_and_reports_it_in_json(capsys):
    assert main(["plan", "--stack", "dev", "--format", "json", "--observed", str(HUBBLE)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert [(d["to"], d["layer"]) for d in doc["observed"]["wouldDrop"]] == [("world 20.50.2.40 (api.example.com)", "L3/L4")]
    assert doc["observed"]["skipped"]["malformed"] == [f"{HUBBLE.name}:11: not JSON (a line cut by log rotation?)"]
    (f,) = doc["observed"]["files"]
    assert (f["file"], f["shape"], f["records"], f["malformed"]) == (HUBBLE.name, "lines", 11, 1)


def test_a_capture_of_which_nothing_could_be_read_is_an_error_not_nothing_dropped(tmp_path, capsys):
    garbage = tmp_path / "flows.json"
    garbage.write_text("{\n  not json\n")
    assert main(["plan", "--stack", "dev", "--observed", str(HUBBLE), str(garbage)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --observed flows.json: no flow records or Log Analytics rows could be read (1 records: 1 malformed")


def test_a_missing_observed_file_is_one_error_line_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["plan", "--stack", "dev", "--out", str(out), "--observed", str(tmp_path / "nope.jsonl"), str(HUBBLE)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: --observed {tmp_path / 'nope.jsonl'}: no such file"]
    assert not out.exists()


def test_names_from_a_capture_cannot_inject_markdown_into_the_pull_request_report(tmp_path, capsys):
    capture = write(tmp_path, flow_line(FRONTEND, WORLD, "20.0.0.1", 443, destination_names=["x`<img src=y>[click](https://evil)"]))
    assert main(["plan", "--stack", "dev", "--format", "markdown", "--observed", str(capture)]) == 1
    tokens = markdown_tokens(capsys.readouterr().out)
    assert not [t for t in tokens if t.type in ("image", "link_open", "html_inline")]
    assert any(t.type == "code_inline" and "x`<img src=y>[click](https://evil)" in t.content for t in tokens)


# -- a pod-to-pod call is never the world, whatever shape its record has -------------------------------------

SHOP_PODS = [(w["namespace"], name) for name, w in SHOP_CONFIG["zero-trust-aks:workloads"].items()]


@st.composite
def pod_end(draw, namespace: str, name: str) -> dict:
    """A pod as some record shape names it: labels, proxy-world labels, masked, workloads[]..."""
    pod_name = f"{name}-7c9f8d6b5c-{draw(st.sampled_from(['q4z8w', 'xk2lp', 'b7d9m']))}"
    shape = draw(st.sampled_from(["labels", "proxy-world", "masked", "workloads", "labels+identity"]))
    if shape == "labels":
        return {"namespace": namespace, "labels": [f"k8s:app={name}"], "pod_name": pod_name}
    if shape == "proxy-world":
        return {"identity": 2, "namespace": namespace, "labels": ["reserved:world"], "pod_name": pod_name}
    if shape == "masked":
        return {"namespace": namespace, "pod_name": pod_name}
    if shape == "workloads":
        return {"namespace": namespace, "workloads": [{"name": name, "kind": "Deployment"}], "pod_name": pod_name}
    return {"identity": 40000, "namespace": namespace, "labels": [f"k8s:app={name}", f"k8s:io.kubernetes.pod.namespace={namespace}"]}


@st.composite
def pod_records(draw) -> list[str]:
    out = []
    for i in range(draw(st.integers(1, 8))):
        (sns, sname), (dns, dname) = draw(st.sampled_from(SHOP_PODS)), draw(st.sampled_from(SHOP_PODS))
        record = flow(draw(pod_end(sns, sname)), draw(pod_end(dns, dname)), f"10.244.1.{i + 1}", draw(st.sampled_from([8080, 9090, 5432])),
                      sport=1000 + i, src_ip=f"10.244.0.{i + 1}")
        if draw(st.booleans()):
            record = camel(record)
        out.append(json.dumps({"flow": record}))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pod_records())
def test_a_pod_to_pod_call_is_never_reported_as_the_world(tmp_path, lines):
    _, r = replay_config(SHOP_CONFIG, write(tmp_path, *lines))
    judged = [*r.would_drop, *r.undecided]
    assert not [d for d in judged if d.src.startswith(("world", "unattributed")) or d.dst.startswith(("world", "unattributed"))]
    assert r.unattributed == ()


def test_the_markdown_graph_draws_would_drop_connections_red_and_declared_flows_never_observed_dashed(tmp_path, capsys):
    capture = write(tmp_path, flow_line(PAYMENTS, WORLD, "54.9.9.9", 443, sport=1, destination_names=['evil"]) x(["ok']),
                    flow_line(WEB, API, "10.244.0.9", 8080, sport=2))
    assert main(["plan", "--stack", "shop", "--stack-file", str(SHOP), "--format", "markdown", "--observed", str(capture)]) == 1
    graph = capsys.readouterr().out.split("```mermaid\n", 1)[1].split("```", 1)[0].splitlines()
    nodes = {line.split("[", 1)[0].split("(", 1)[0].strip(): line for line in graph if '"' in line}
    edges = [line.strip() for line in graph if "->" in line or "-.->" in line]
    (drop,) = [i for i, e in enumerate(edges) if "DROPS" in e]
    assert graph[-1].strip() == f"linkStyle {drop} stroke:#d00,stroke-width:3px,color:#d00"
    target = edges[drop].rsplit(" ", 1)[1]
    assert nodes[target].strip() == f'{target}(["world 54.9.9.9 (evil__) x(__ok)"])'  # quotes and brackets from the capture neutralised
    assert any("-.->|8080/TCP never observed|" in e for e in edges)  # internet -> edge, declared, not in this capture
    assert not any("never observed" in e and "HTTP" in e for e in edges)  # web -> api was observed (undecided at L7)


def test_without_a_replay_the_graph_has_no_dashed_or_red_edges(capsys):
    assert main(["plan", "--stack", "dev", "--format", "markdown"]) == 0
    graph = capsys.readouterr().out.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert "linkStyle" not in graph and "never observed" not in graph and "-->|80/TCP|" in graph


def test_the_query_command_aggregates_the_stacks_namespaces_in_log_analytics_and_keeps_rows_whose_reply_is_null(capsys):
    from policies.observed.log_analytics import COUNTS

    assert main(["query", "--stack", "shop", "--stack-file", str(SHOP), "--days", "30"]) == 0
    kql = capsys.readouterr().out
    assert 'let namespaces = dynamic(["shop-core", "shop-data", "shop-edge", "shop-web"]);' in kql
    assert "| where TimeGenerated > ago(30d)" in kql and "| where isnull(Reply) or Reply == false" in kql
    assert "Reply == false\n" not in kql.replace("isnull(Reply) or Reply == false\n", "")
    summarized = kql.split("| summarize", 1)[1]
    assert all(f"{c} = sum({c})" in summarized for c in COUNTS)
    by = {c.strip() for c in summarized.split(" by ", 1)[1].split(",")}
    # every column the reader needs to name both ends, the port and the direction is kept
    assert {"Verdict", "DropReason", "Reply", "Protocol", "DestinationPort", "SourceNamespace", "SourceWorkload", "SourceIdentity",
            "SourceAddress", "DestinationNamespace", "DestinationWorkload", "DestinationIdentity", "DestinationAddress"} <= by


@pytest.mark.parametrize("argv, line", [(["--stack", "nope"], "error: Pulumi.nope.yaml: no such stack file; stacks here: dev, local, prod"),
                                        (["--stack", "dev", "--days", "0"], "error: --days: from 1 to 730 (Log Analytics keeps at most two years)")])
def test_the_query_command_names_a_bad_stack_or_window_in_one_line(capsys, argv, line):
    assert main(["query", *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_a_replayed_rows_json_carries_the_requests_its_l7_rules_reject_and_only_then():
    http = Replayed("frontend", "backend", 80, "TCP", 2, "t0", "t1", "HTTP rules", layer="HTTP", requests=("GET /admin",))
    plain = Replayed("frontend", "backend", 80, "TCP", 2, "t0", "t1", "default deny")
    assert http.as_dict()["requests"] == ["GET /admin"] and "requests" not in plain.as_dict()
    assert http.line == "frontend -> backend:80/TCP GET /admin (2 seen, t0 .. t1)"


# -- grouping, counting and ordering --------------------------------------------------------------------------


def test_connections_of_one_workload_pair_are_one_row_counted_and_dated_across_them(tmp_path):
    a = pod("backend", app="backend", **{"pod-template-hash": "5d78c9869d"})  # two ReplicaSets: one identity to Cilium
    b = pod("backend", app="backend", **{"pod-template-hash": "7f9b8c6d5e"})
    capture = write(tmp_path, flow_line(a, FRONTEND, "10.244.0.7", 8080, sport=1, time="2026-11-20T10:00:00Z"),
                    flow_line(b, FRONTEND, "10.244.0.7", 8080, sport=2, src_ip="10.244.0.8", time="2026-11-20T09:00:00Z"))
    _, r = replay_config(DEV_CONFIG, capture)
    (d,) = r.would_drop
    assert (d.src, d.dst, d.count, d.first, d.last) == ("backend", "frontend", 2, "2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z")
    assert r.staged is None  # no staged namespace, no tally


def test_the_lookups_of_every_connection_of_a_row_are_judged_together(tmp_path):
    a = pod("shop-core", app="payments", **{"pod-template-hash": "5d78c9869d"})  # two ReplicaSets: one identity to Cilium
    b = pod("shop-core", app="payments", **{"pod-template-hash": "7f9b8c6d5e"})
    _, r = replay_config(SHOP_CONFIG, write(tmp_path, dns_line(a, "exfil.attacker.example", 1), dns_line(b, "api.stripe.com", 2)))
    (d,) = r.would_drop
    assert (d.src, d.layer, d.requests, d.count) == ("payments", "DNS", ("exfil.attacker.example",), 2)


def test_rows_come_most_seen_first_and_unattributed_ends_most_counted_first(tmp_path):
    capture = write(tmp_path, flow_line(BACKEND, FRONTEND, "10.244.0.7", 8080, sport=1),
                    *(flow_line(FRONTEND, BACKEND, "10.244.0.62", 9090, sport=s) for s in (2, 3)),
                    flow_line({}, BACKEND, "10.244.0.62", 80, sport=4, src_ip="10.224.0.70"),
                    *(flow_line({}, BACKEND, "10.244.0.62", 80, sport=s, src_ip="10.224.0.99") for s in (5, 6)),
                    flow_line({}, BACKEND, "10.244.0.62", 80, sport=7, src_ip="10.224.0.50"))
    _, r = replay_config(DEV_CONFIG, capture)
    assert [(d.src, d.count) for d in r.would_drop] == [("frontend", 2), ("backend", 1)]
    assert [(u.end, u.count) for u in r.unattributed] == [
        ("unattributed 10.224.0.99", 2), ("unattributed 10.224.0.50", 1), ("unattributed 10.224.0.70", 1)]


def test_a_dropped_connection_with_no_time_is_undated(tmp_path):
    line = json.loads(flow_line(BACKEND, FRONTEND, "10.244.0.7", 8080))
    del line["flow"]["time"]
    _, r = replay_config(DEV_CONFIG, write(tmp_path, json.dumps(line)))
    assert [(d.first, d.last) for d in r.would_drop] == [("", "")]


def test_a_udp_connection_is_judged_on_udp_not_on_the_tcp_port_the_flow_allows(tmp_path):
    _, r = replay_config(DEV_CONFIG, write(tmp_path, flow_line(FRONTEND, BACKEND, "10.244.0.6", 80, proto="UDP")))
    assert [(d.src, d.dst, d.port) for d in r.would_drop] == [("frontend", "backend", 80)]


def test_connections_past_an_unattributed_or_undecided_one_are_still_judged(tmp_path):
    empty = {}
    capture = write(
        tmp_path,
        flow_line(empty, API, "10.244.0.6", 8080, sport=1),
        flow_line(CANARY, WORLD, "54.1.1.1", 443, sport=2, destination_names=["api.stripe.com"]),
        flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, sport=3),  # allowed only if another pod's lookup is still cached
        flow_line(empty, API, "10.244.0.6", 9090, sport=4),  # the same unnamed end on another port
        flow_line(API, WEB, "10.244.0.7", 8080, sport=5),
    )
    _, r = replay_config(SHOP_CONFIG, capture)
    assert undecided(r) == [("payments", "world 54.1.1.1", 443, "L3/L4")]
    assert rows(r) == [("api", "web", 8080, "L3/L4")]
    assert [u.count for u in r.unattributed] == [2]


def test_a_toFqdns_flow_is_observed_only_through_its_own_source_naming_its_names(tmp_path):
    capture = write(tmp_path, flow_line(pod("shop-core", app="orders"), WORLD, "54.1.1.1", 443, destination_names=["api.stripe.com"]))
    _, r = replay_config(SHOP_CONFIG, capture)
    assert "payments -> api.stripe.com:443/TCP" in r.never_observed


# -- naming the ends ----------------------------------------------------------------------------------------


def test_an_address_inside_an_address_peer_keeps_the_names_it_was_looked_up_by(tmp_path):
    config = json.loads(json.dumps(SHOP_CONFIG))
    config["zero-trust-aks:peers"]["stripe-range"] = {"cidrs": ["54.1.0.0/16"]}  # declared, no flow allows it
    capture = write(tmp_path, flow_line(PAYMENTS, WORLD, "54.1.1.1", 443, destination_names=["api.stripe.com"]))
    _, r = replay_config(config, capture)
    assert (r.would_drop, r.undecided, r.unattributed) == ((), (), ())  # the toFqdns flow allows it by its name


@pytest.mark.parametrize("end, shown", [
    ({"namespace": "evil", "labels": ["k8s:k8s-app=kube-dns"], "pod_name": "coredns-5d78c9869d-xq2mz"}, "evil/k8s-app=kube-dns"),
    ({"namespace": "kube-system", "pod_name": "metrics-server-5d78c9869d-xq2mz"}, "kube-system/metrics-server-5d78c9869d-xq2mz"),
], ids=["kube-dns's labels outside kube-system", "a kube-system pod known by its name only"])
def test_only_kube_systems_dns_pods_are_named_kube_dns_and_allowed_dns(tmp_path, end, shown):
    _, r = replay_config(DEV_CONFIG, write(tmp_path, flow_line(FRONTEND, end, "10.244.3.3", 53, proto="UDP"),
                                           flow_line(FRONTEND, DNS, "10.244.3.4", 53, sport=2, proto="UDP")))
    assert rows(r) == [("frontend", shown, 53, "L3/L4")]  # the real kube-dns beside it is allowed



@pytest.mark.parametrize("address", ["20.1.2.3", ""], ids=["at an address", "address not recorded"])
def test_a_call_to_the_api_server_outside_the_cluster_is_allowed_by_a_flow_to_the_world(tmp_path, address):
    # On AKS the API server's address is outside the cluster: its identity is kube-apiserver and world
    # (the record's labels say so), so toEntities world selects it.
    config = {**DEV_CONFIG, "zero-trust-aks:peers": {"internet": {"entity": "world"}},
              "zero-trust-aks:flows": [*DEV_CONFIG["zero-trust-aks:flows"], {"from": "frontend", "to": "internet", "port": 443}]}
    apiserver = {"identity": 7, "labels": ["reserved:kube-apiserver", "reserved:world"]}
    _, r = replay_config(config, write(tmp_path, flow_line(FRONTEND, apiserver, address, 443)))
    assert (r.would_drop, r.undecided, r.connections) == ((), (), 1)

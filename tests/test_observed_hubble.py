"""One Hubble flow record into its connection: the ends' addresses and names, the request or lookup it
carries, what it weighs, and when it is the same connection seen a second time."""

from __future__ import annotations

from policies.observed.hubble import connection_of
from policies.observed.records import End, FileCounts, Observations
from tests.capture import HOST, WORLD, flow, pod

WEB = pod("shop", app="web")
API = pod("shop", app="api")
APISERVER = {"identity": 7, "labels": ["reserved:kube-apiserver"]}
OTHER_L7 = "L7 records other than HTTP and DNS requests (Kafka...)"


def read(*records: dict) -> tuple[Observations, FileCounts]:
    obs, counts = Observations(), FileCounts("capture.json")
    for r in records:
        connection_of(r, obs, counts)
    return obs, counts


def test_a_reserved_end_keeps_what_its_record_says_and_gains_only_its_address():
    host = {**HOST, "labels": ["reserved:host", "node:agentpool=system"]}
    obs, _ = read(flow(host, API, "10.244.0.62", 80, src_ip="10.224.0.4"))
    (c,) = obs.connections.values()
    assert c.src == End(reserved="host", labels_known=False, ip="10.224.0.4", node_labels=(("agentpool", "system"),))
    assert c.src.node_labels == (("agentpool", "system"),)
    assert c.dst == End("shop", (("app", "api"),))


def test_an_end_the_record_gives_no_identity_keeps_its_address():
    obs, _ = read(flow(WEB, {}, "10.244.0.77", 80))
    (c,) = obs.connections.values()
    assert (c.dst.unattributed, c.dst.ip, c.dst.names) == (True, "10.244.0.77", None)


def test_only_the_world_keeps_the_names_its_source_looked_it_up_under():
    names = {"destination_names": ["kubernetes.example."]}
    obs, _ = read(flow(WEB, APISERVER, "20.1.2.3", 443, sport=1, **names), flow(WEB, APISERVER, "20.1.2.3", 443, sport=2))
    (c,) = obs.connections.values()
    assert (c.dst.reserved, c.dst.names, c.count) == ("kube-apiserver", None, 2)
    obs, _ = read(flow(WEB, WORLD, "52.1.1.1", 443, **names))
    assert [c.dst.names for c in obs.connections.values()] == [("kubernetes.example",)]


def http(method: str, url: str, **fields) -> dict:
    return {"Type": "L7", "l7": {"type": "REQUEST", "http": {"method": method, "url": url, **fields}}}


def test_an_http_request_keeps_its_headers_as_the_record_lists_them_and_none_when_it_lists_none():
    headers = [{"key": "x-tenant", "value": "blue"}, {"key": ":authority", "value": "api"}]
    obs, _ = read(flow(WEB, API, "10.244.0.62", 80, sport=1, **http("GET", "http://api/a", headers=headers)),
                  flow(WEB, API, "10.244.0.62", 80, sport=2, **http("POST", "http://api/b")),
                  flow(WEB, API, "10.244.0.62", 80, sport=3, **http("PUT", "http://api/c", headers=[])))
    (c,) = obs.connections.values()
    assert {r.method: r.headers for r in c.requests.values()} == {
        "GET": (("x-tenant", "blue"), (":authority", "api")), "POST": None, "PUT": ()}


def test_each_l7_record_other_than_an_http_or_dns_request_is_skipped_and_counted():
    kafka = {"Type": "L7", "l7": {"type": "REQUEST", "kafka": {"topic": "orders"}}}
    answer = {"Type": "L7", "l7": {"type": "RESPONSE", "dns": {"rcode": 3}}}
    obs, counts = read(flow(WEB, API, "10.244.0.62", 9092, sport=1, **kafka), flow(WEB, API, "10.244.0.62", 9092, sport=2, **kafka),
                       flow(WEB, API, "10.244.0.10", 53, proto="UDP", **answer))
    assert obs.connections == {} and counts.skipped == {OTHER_L7: 3}


def test_records_of_one_connection_differ_by_source_address_source_port_or_destination_address():
    same = flow(WEB, API, "10.244.0.62", 80)
    obs, counts = read(same, same, flow(WEB, API, "10.244.0.62", 80, src_ip="10.244.0.6"),
                       flow(WEB, API, "10.244.0.63", 80), flow(WEB, API, "10.244.0.62", 80, sport=40001))
    (c,) = obs.connections.values()
    assert c.count == 4 and counts.connections == 4


def test_an_aggregate_without_flow_counts_weighs_one():
    aggregate = {"aggregate": {"ingress_flow_count": 0, "egress_flow_count": 0}}
    obs, _ = read(flow(WEB, API, "10.244.0.62", 80, **aggregate), flow(WEB, API, "10.244.0.62", 80, **aggregate))
    (c,) = obs.connections.values()
    assert c.count == 2


def test_a_labelled_source_or_destination_named_by_its_pod_is_remembered_for_records_that_name_it_without_labels():
    obs, _ = read(flow({**WEB, "pod_name": "web-1"}, {**API, "pod_name": "api-2"}, "10.244.0.62", 80))
    assert obs.pods == {("shop", "web-1"): End("shop", (("app", "web"),)), ("shop", "api-2"): End("shop", (("app", "api"),))}


def test_an_end_with_a_namespace_and_any_label_of_its_pod_is_that_pod_whatever_reserved_label_it_also_has():
    own = {"namespace": "shop", "labels": ["k8s:app=api", "reserved:world"]}
    cilium_only = {"namespace": "shop", "labels": ["k8s:io.cilium.k8s.policy.serviceaccount=api", "reserved:world"]}
    obs, _ = read(flow(WEB, own, "10.244.0.62", 80, sport=1), flow(WEB, cilium_only, "10.244.0.62", 80, sport=2))
    assert sorted((c.dst.namespace, c.dst.labels, c.dst.cilium_labels, c.dst.reserved) for c in obs.connections.values()) == [
        ("shop", (), (("io.cilium.k8s.policy.serviceaccount", "api"),), None), ("shop", (("app", "api"),), (), None)]


def test_a_cidr_label_makes_an_end_the_world_without_an_identity_number_ipv6_too():
    obs, _ = read(flow(WEB, {"labels": ["cidr:2001:db8::/32"]}, "2001:db8::7", 443, sport=1),
                  flow(WEB, {"labels": ["cidr:52.0.0.0/8"]}, "52.1.1.1", 443, sport=2))
    assert sorted((c.dst.reserved, c.dst.ip) for c in obs.connections.values()) == [("world", "2001:db8::7"), ("world", "52.1.1.1")]

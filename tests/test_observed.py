"""Reading captured traffic: every record shape Hubble and Log Analytics produce, and what each becomes."""

from __future__ import annotations

import json
import re
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import observed
from policies.observed import hubble
from policies.observed.hubble import NOT_A_CONNECTION
from policies.observed.read import shape as read_shape
from policies.observed.records import EXAMPLES
from tests.capture import (
    HOST,
    HUBBLE,
    ROWS,
    UPSTREAM,
    WORLD,
    api_tables,
    az_json,
    by_ends,
    camel,
    flow,
    flow_line,
    la_row,
    pod,
    upstream,
    write,
)

RATINGS = "bookinfo/app=ratings,sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo,version=v1"
PRODUCTPAGE = "bookinfo/app=productpage,sidecar.opentelemetry.io/injected=bookinfo.otelcol-bookinfo,version=v1"
SYN = {(RATINGS, PRODUCTPAGE, 9080, "TCP"): 1}
"""What upstream line 1 (a forwarded SYN, ratings -> productpage:9080) must become, in every shape."""


def read_text(tmp_path, text: str, name: str = "capture.json") -> observed.Observations:
    path = tmp_path / name
    path.write_text(text)
    return observed.read([path])


# -- shapes: each the same connection -------------------------------------------------------------


def test_a_hubble_line_becomes_its_connection(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(1)) + "\n")
    assert by_ends(obs) == SYN and obs.files[0].shape == "lines" and obs.files[0].kinds == {"Hubble flow": 1}


def test_a_bare_flow_line_of_the_hubble_cli_before_0_11_becomes_the_same_connection(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(1)["flow"]) + "\n")
    assert by_ends(obs) == SYN and list(obs.files[0].kinds) == ["bare flow (hubble CLI before v0.11)"]


@pytest.mark.parametrize("bare", [False, True], ids=["envelopes", "bare flows"])
def test_a_json_array_of_records_is_streamed_item_by_item(tmp_path, bare):
    record = upstream(1)["flow"] if bare else upstream(1)
    obs = read_text(tmp_path, json.dumps([record, upstream(3)], indent=2))
    assert by_ends(obs) == SYN and obs.files[0].shape == "array" and obs.files[0].records == 2
    assert obs.files[0].skipped == {"replies": 1}


def test_pretty_printed_records_one_after_another_are_read_value_by_value(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(1), indent=2) + "\n" + json.dumps(upstream(2), indent=4) + "\n")
    assert obs.files[0].shape == "values" and obs.files[0].records == 2
    assert by_ends(obs) == {(RATINGS, PRODUCTPAGE, 9080, "TCP"): 2}  # two client ports: two connections


def test_concatenated_records_on_one_line_are_read_too(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(1)) + json.dumps(upstream(2)))
    assert obs.files[0].shape == "values" and by_ends(obs) == {(RATINGS, PRODUCTPAGE, 9080, "TCP"): 2}


def test_protojson_camel_case_names_read_as_the_proto_names(tmp_path):
    record = camel(upstream(1))
    assert "isReply" in record["flow"] and "destinationPort" in record["flow"]["l4"]["TCP"]
    obs = read_text(tmp_path, json.dumps(record) + "\n")
    assert by_ends(obs) == SYN and list(obs.files[0].kinds) == ["Hubble flow, camelCase names"]


def test_a_camel_case_reply_is_still_a_reply(tmp_path):
    obs = read_text(tmp_path, json.dumps(camel(upstream(3))) + "\n")
    assert obs.connections == {} and obs.files[0].skipped == {"replies": 1}


def test_an_exporter_aggregate_weighs_its_connection_by_its_flow_counts(tmp_path):
    record = upstream(1)
    record["flow"]["aggregate"] = {"ingress_flow_count": 3, "egress_flow_count": 2}
    obs = read_text(tmp_path, json.dumps(record) + "\n")
    assert by_ends(obs) == {(RATINGS, PRODUCTPAGE, 9080, "TCP"): 5}
    assert list(obs.files[0].kinds) == ["Hubble flow, exporter aggregate"]


def test_a_utf8_byte_order_mark_does_not_hide_the_first_record(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(upstream(1)).encode() + b"\n")
    assert by_ends(observed.read([path])) == SYN


@pytest.mark.parametrize("head, shape", [
    (b"\xef\xbb\xbf\r\n  [" + json.dumps(upstream(1)).encode() + b"]", "array"),  # a byte order mark, then blank lines
    (b'{"flow": {"time": "2026-' + b"\n" + json.dumps(upstream(1)).encode(), "lines"),  # the first line cut by log rotation
    (b"{\n" + b'"a": 1,\n' * 3 + b"}\n" + json.dumps(upstream(1)).encode(), "values"),  # a first record over five lines
])
def test_a_files_shape_is_told_from_its_first_bytes_past_a_byte_order_mark_and_blank_lines(head, shape):
    assert read_shape(head) == shape


# -- Log Analytics -----------------------------------------------------------------------------------

FRONTEND_BACKEND = {("frontend/frontend", "backend/backend", 80, "TCP"): 2}


def test_the_query_apis_own_json_is_streamed_row_by_row(tmp_path):
    obs = read_text(tmp_path, api_tables([la_row("frontend", "frontend", "backend", "backend", 80)]))
    assert obs.files[0].shape == "tables" and by_ends(obs) == FRONTEND_BACKEND


def test_the_query_apis_json_on_one_line_is_read_too(tmp_path):
    obs = read_text(tmp_path, api_tables([la_row("frontend", "frontend", "backend", "backend", 80)], indent=None))
    assert obs.files[0].shape == "lines" and by_ends(obs) == FRONTEND_BACKEND


def test_az_json_output_with_every_value_a_string_reads_as_the_rows(tmp_path):
    rows = [la_row("frontend", "frontend", "backend", "backend", 80, DropReason=None), la_row("backend", "backend", "frontend", "frontend", 80, Reply=True)]
    text = az_json(rows)
    assert '"Reply": "False"' in text and '"DropReason": "None"' in text and '"Layer4": "{' in text
    obs = read_text(tmp_path, text)
    assert by_ends(obs) == FRONTEND_BACKEND and obs.files[0].skipped == {"replies": 1}


def test_rows_exported_as_json_lines_are_rows(tmp_path):
    obs = read_text(tmp_path, json.dumps(la_row("frontend", "frontend", "backend", "backend", 80)) + "\n")
    assert by_ends(obs) == FRONTEND_BACKEND and list(obs.files[0].kinds) == ["Log Analytics row"]


def test_a_row_whose_reply_is_null_is_direction_unknown_unless_it_is_a_policy_drop(tmp_path):
    rows = [
        la_row("frontend", "frontend", "backend", "backend", 80, Reply=None),
        la_row("frontend", "frontend", "backend", "backend", 8080, Reply=None, Verdict="DROPPED", DropReason="POLICY_DENIED"),
        la_row("frontend", "frontend", "backend", "backend", 9090, Reply=None, Verdict="DROPPED", DropReason="CT_MAP_INSERTION_FAILED"),
    ]
    obs = read_text(tmp_path, json.dumps(rows))
    assert by_ends(obs) == {("frontend/frontend", "backend/backend", 8080, "TCP"): 2}
    assert obs.files[0].skipped == {"direction unknown (no is_reply, not a SYN, not a policy drop)": 2}


def test_an_empty_summarized_workload_column_falls_back_to_the_workloads_list(tmp_path):
    row = la_row("frontend", "frontend", "backend", "backend", 80, SourceWorkload="", DestinationWorkload="")
    assert by_ends(read_text(tmp_path, az_json([row]))) == FRONTEND_BACKEND


def test_an_object_with_one_column_name_of_the_table_is_not_taken_for_a_row(tmp_path):
    obs = read_text(tmp_path, json.dumps([{"TimeGenerated": "2026-11-20T09:00:00Z", "message": "hello"}]))
    assert obs.files[0].skipped == {"not a flow record or Log Analytics row": 1} and obs.files[0].kinds == {}


def test_rows_of_the_recommended_query_read_their_summarized_columns(tmp_path):
    row = {
        "Verdict": "FORWARDED", "DropReason": "", "Reply": False, "Protocol": "UDP", "DestinationPort": 5353,
        "SourceNamespace": "frontend", "SourceWorkload": "frontend", "SourcePodName": "", "SourceIdentity": 21001, "SourceAddress": "",
        "DestinationNamespace": "", "DestinationWorkload": "", "DestinationPodName": "", "DestinationIdentity": 2,
        "DestinationAddress": "52.1.2.3", "FirstSeen": "2026-11-01T00:00:00Z", "TimeGenerated": "2026-11-20T00:00:00Z",
        "IngressFlowCount": 0, "EgressFlowCount": 40, "UnknownDirectionFlowCount": 2,
    }
    obs = read_text(tmp_path, az_json([row]))
    (c,) = obs.connections.values()
    assert (c.src.display, c.dst.display, c.port, c.protocol, c.count) == ("frontend/frontend", "world 52.1.2.3", 5353, "UDP", 42)
    assert (c.first, c.last) == ("2026-11-01T00:00:00Z", "2026-11-20T00:00:00Z")


def test_a_row_uses_the_ip_column_and_pod_names_where_it_has_them(tmp_path):
    row = la_row("frontend", "", "", "", 443, SourcePodName="debug-7d4b9c8f6d-x2x5k", DestinationIdentity=2,
                 IP={"source": "10.244.1.5", "destination": "20.50.2.40"})
    (c,) = read_text(tmp_path, json.dumps([row])).connections.values()
    assert c.src.pod == "debug-7d4b9c8f6d-x2x5k" and (c.dst.reserved, c.dst.ip) == ("world", "20.50.2.40")


def test_the_committed_rows_skip_replies_read_layer4_given_as_text_and_weigh_by_their_flow_counts():
    obs = observed.read([ROWS])
    assert by_ends(obs) == {("frontend/frontend", "backend/backend", 80, "TCP"): 8, ("backend/backend", "frontend/frontend", 80, "TCP"): 2}
    assert obs.skipped["replies"] == 1


# -- ends ---------------------------------------------------------------------------------------------


def test_a_pod_the_l7_proxy_reports_as_reserved_world_is_that_pod_by_its_name(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(9)) + "\n")  # productpage -> details, destination labelled reserved:world
    (c,) = obs.connections.values()
    assert c.dst.reserved is None and (c.dst.namespace, c.dst.pod, c.dst.labels_known) == ("bookinfo", "details-v1-79f774bdb9-m4j4k", False)
    assert [r.text for r in c.requests.values()] == ["GET /details/0"] and c.count == 0 and c.seen == 1


def test_an_http_request_between_labelled_pods_rides_its_connection_without_counting_a_new_one(tmp_path):
    syn = json.loads(flow_line(pod("bookinfo", app="productpage"), pod("bookinfo", app="reviews"), "10.244.0.110", 9080, sport=35128))
    request = upstream(10)
    request["flow"]["source"], request["flow"]["destination"] = syn["flow"]["source"], syn["flow"]["destination"]
    obs = read_text(tmp_path, json.dumps(syn) + "\n" + json.dumps(request) + "\n")
    (c,) = obs.connections.values()
    assert (c.count, c.l7_records, [r.text for r in c.requests.values()]) == (1, 1, ["GET /reviews/0"])


def test_the_nodes_own_connection_to_a_pod_starts_at_host(tmp_path):
    (c,) = read_text(tmp_path, json.dumps(upstream(8)) + "\n").connections.values()
    assert (c.src.reserved, c.src.ip, c.dst.namespace, c.port) == ("host", "10.224.0.4", "jaeger", 14269)


@pytest.mark.parametrize("end", [{"identity": 9}, {"identity": 10}, {"identity": 16777216}, {"identity": 16777300},
                                 {"labels": ["reserved:world-ipv4"]}, {"labels": ["reserved:world-ipv6"]},
                                 {"labels": ["cidr:20.0.0.0/8", "reserved:world"]}, {"labels": ["cidr:20.50.2.0/24"]}],
                         ids=["identity 9", "identity 10", "the first local identity", "a local CIDR identity", "world-ipv4",
                              "world-ipv6", "a CIDR identity", "CIDR labels only"])
def test_every_way_a_record_names_the_outside_reads_as_world(tmp_path, end):
    obs = read_text(tmp_path, flow_line(pod("frontend", app="frontend"), end, "20.50.2.40", 443) + "\n")
    (c,) = obs.connections.values()
    assert (c.dst.reserved, c.dst.ip) == ("world", "20.50.2.40")


@pytest.mark.parametrize("labels", [["cidr:20.1.0.0/16", "reserved:kube-apiserver", "reserved:world"],
                                    ["reserved:world", "cidr:20.1.0.0/16", "reserved:kube-apiserver"],
                                    ["reserved:kube-apiserver", "reserved:world-ipv4"]],
                         ids=["cidr first", "world first", "kube-apiserver first"])
def test_an_api_server_outside_the_cluster_reads_as_the_api_server_in_whatever_order_its_labels_come(tmp_path, labels):
    obs = read_text(tmp_path, flow_line(pod("frontend", app="frontend"), {"identity": 16777217, "labels": labels}, "20.1.1.1", 443) + "\n")
    (c,) = obs.connections.values()
    assert (c.dst.reserved, c.dst.ip) == ("kube-apiserver", "20.1.1.1")


def test_identity_7_without_labels_is_the_api_server_and_identity_0_is_nobody(tmp_path):
    obs = read_text(tmp_path, flow_line(pod("frontend", app="frontend"), {"identity": 7}, "20.1.1.1", 443, sport=1) + "\n"
                    + flow_line(pod("frontend", app="frontend"), {"identity": 0}, "20.1.1.2", 443, sport=2) + "\n")
    assert {c.dst.display for c in obs.connections.values()} == {"kube-apiserver 20.1.1.1", "unattributed 20.1.1.2"}


def test_a_masked_end_with_only_a_namespace_and_a_pod_name_keeps_the_name_and_an_empty_end_is_unattributed(tmp_path):
    obs = observed.read([UPSTREAM])
    masked = next(c for c in obs.connections.values() if c.port == 80)  # the field-masked export.rst drop
    assert (masked.src.namespace, masked.src.pod, masked.dst.pod) == ("default", "xwing", "deathstar-7848d6c4d5-th9v2")
    (c,) = read_text(tmp_path, flow_line({}, pod("backend", app="backend"), "10.244.0.62", 80) + "\n").connections.values()
    assert c.src.unattributed and c.src.display == "unattributed 10.244.0.5"


def test_an_older_capture_that_names_the_namespace_only_as_a_label_still_places_the_pod(tmp_path):
    src = {"labels": ["k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=frontend"]}
    (conn,) = read_text(tmp_path, flow_line(src, pod("backend", app="backend"), "10.0.0.6", 80) + "\n").connections.values()
    assert conn.src.namespace == "frontend" and conn.src.labels == (("app", "frontend"),)


def test_the_labels_cilium_adds_to_an_identity_are_kept_apart_from_the_pods_own():
    (c,) = [c for c in observed.read([UPSTREAM]).connections.values() if c.protocol == "UDP"]
    assert ("io.cilium.k8s.policy.serviceaccount", "bookinfo-ratings") in c.src.cilium_labels
    assert all(not k.startswith("io.cilium") for k, _ in c.src.labels)


# -- direction ----------------------------------------------------------------------------------------


def test_a_syn_without_a_reply_flag_starts_a_connection_and_a_syn_ack_is_a_reply(tmp_path):
    src, dst = pod("a", app="x"), pod("b", app="y")
    syn = flow(src, dst, "10.0.0.6", 80)
    del syn["is_reply"]
    synack = flow(dst, src, "10.0.0.5", 40000, sport=80)
    del synack["is_reply"]
    synack["l4"]["TCP"]["flags"] = {"SYN": True, "ACK": True}
    obs = read_text(tmp_path, json.dumps({"flow": syn}) + "\n" + json.dumps({"flow": synack}) + "\n")
    assert by_ends(obs) == {("a/app=x", "b/app=y", 80, "TCP"): 1} and obs.skipped["replies"] == 1


@pytest.mark.parametrize("protocol, reason", [("UDP", {"drop_reason_desc": "POLICY_DENIED"}), ("TCP", {"drop_reason_desc": "POLICY_DENY"}),
                                              ("UDP", {"drop_reason_desc": "AUTH_REQUIRED"}), ("UDP", {"drop_reason": 133})],
                         ids=["POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED", "the deprecated number 133"])
def test_a_policy_drop_without_a_reply_flag_is_the_initiators_packet(tmp_path, protocol, reason):
    record = flow(pod("frontend", app="frontend"), pod("backend", app="backend"), "10.0.0.6", 53, proto=protocol,
                  verdict="DROPPED", **reason)
    del record["is_reply"]
    if protocol == "TCP":
        record["l4"]["TCP"]["flags"] = {"ACK": True, "PSH": True}
    assert by_ends(read_text(tmp_path, json.dumps({"flow": record}) + "\n")) == {("frontend/app=frontend", "backend/app=backend", 53, protocol): 1}


def test_a_forwarded_udp_record_or_a_drop_for_another_reason_without_a_reply_flag_is_direction_unknown(tmp_path):
    forwarded = flow(pod("frontend", app="frontend"), pod("backend", app="backend"), "10.0.0.6", 53, proto="UDP")
    ct_drop = flow(pod("frontend", app="frontend"), pod("backend", app="backend"), "10.0.0.6", 53, proto="UDP", verdict="DROPPED",
                   drop_reason_desc="CT_MAP_INSERTION_FAILED")
    for record in (forwarded, ct_drop):
        del record["is_reply"]
    obs = read_text(tmp_path, "\n".join(json.dumps({"flow": r}) for r in (forwarded, ct_drop)) + "\n")
    assert obs.connections == {} and obs.skipped == {"direction unknown (no is_reply, not a SYN, not a policy drop)": 2}


def test_an_older_capture_marks_a_reply_only_with_reply_true(tmp_path):
    record = flow(pod("backend", app="backend"), pod("frontend", app="frontend"), "10.0.0.5", 40000, proto="UDP", sport=53, reply=True)
    del record["is_reply"]
    obs = read_text(tmp_path, json.dumps({"flow": record}) + "\n")
    assert obs.connections == {} and obs.files[0].skipped == {"replies": 1}


def test_a_bare_flow_reply_is_counted_as_a_bare_flow(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(3)["flow"], separators=(",", ":")) + "\n")
    assert obs.files[0].kinds == {"bare flow (hubble CLI before v0.11)": 1} and obs.files[0].skipped == {"replies": 1}


def test_one_connection_seen_at_both_nodes_counts_once_and_replies_are_not_connections():
    conns = by_ends(observed.read([HUBBLE]))
    assert conns[("frontend/frontend", "backend/backend", 80, "TCP")] == 2  # two source ports; the second node's record adds none
    assert conns[("frontend/frontend", "kube-system/coredns", 53, "UDP")] == 1
    assert observed.read([HUBBLE]).skipped["replies"] == 2


def test_records_that_are_not_connections_are_counted_by_reason_and_a_cut_line_is_named_by_file_and_line():
    obs = observed.read([HUBBLE])
    assert obs.skipped["not a flow (node status, lost or agent events)"] == 1
    assert obs.skipped["not TCP, UDP or SCTP (ICMP and others)"] == 1
    assert obs.skipped["direction unknown (no is_reply, not a SYN, not a policy drop)"] == 1
    assert obs.malformed == [f"{HUBBLE.name}:11: not JSON (a line cut by log rotation?)"]


JAEGER = "jaeger/app=jaeger,app.kubernetes.io/name=jaeger-default"


def test_real_upstream_lines_become_the_connections_their_captures_show():
    conns = by_ends(observed.read([UPSTREAM]))
    assert conns == {
        (RATINGS, PRODUCTPAGE, 9080, "TCP"): 2,  # two client pods' SYNs (one seen only by its labels)
        (RATINGS, "kube-system/k8s-app=kube-dns", 53, "UDP"): 1,  # a DNS lookup
        ("default/xwing", "default/deathstar-7848d6c4d5-th9v2", 80, "TCP"): 1,  # a field-masked policy drop
        ("host 10.224.0.4", JAEGER, 14269, "TCP"): 1,  # kubelet
        ("bookinfo/app=productpage,version=v1", "bookinfo/details-v1-79f774bdb9-m4j4k", 9080, "TCP"): 1,  # an HTTP request, the pod known by name
        ("bookinfo/app=productpage,version=v1", "bookinfo/app=reviews,version=v2", 9080, "TCP"): 1,
        ("istio-system/app=prometheus,release=istio", "kube-system/kube-dns-b4f5c58c7-7qmtw", 10054, "TCP"): 1,
    }


def test_the_upstream_lines_skip_replies_and_the_gke_ack_whose_direction_they_do_not_give():
    obs = observed.read([UPSTREAM])
    assert obs.skipped == {"replies": 2, "direction unknown (no is_reply, not a SYN, not a policy drop)": 1}
    assert obs.malformed == [] and obs.files[0].records == 11 and obs.files[0].connections == 8


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_connections_read_do_not_depend_on_the_order_of_the_lines(tmp_path_factory, rnd: random.Random):
    lines = HUBBLE.read_text().splitlines()
    rnd.shuffle(lines)
    path = tmp_path_factory.mktemp("shuffled") / "flows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert by_ends(observed.read([path])) == by_ends(observed.read([HUBBLE]))


# -- what cannot be read -------------------------------------------------------------------------------


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
        "flows.jsonl:1", "flows.jsonl:2", "flows.jsonl:3", "flows.jsonl:4", "flows.jsonl:5", "rows.json:item 1", "rows.json:item 2",
        "rows.json:item 3",
    ]
    assert obs.connections == {} and [f.malformed for f in obs.files] == [5, 3]


def test_an_outside_address_that_is_not_an_address_makes_its_line_malformed_not_a_traceback(tmp_path):
    obs = read_text(tmp_path, flow_line(pod("frontend", app="frontend"), WORLD, "not-an-ip", 443) + "\n", "flows.jsonl")
    assert obs.connections == {} and obs.malformed == ["flows.jsonl:1: ValueError reading the flow"]


def test_a_json_array_that_breaks_off_keeps_what_came_before_and_names_where_it_broke(tmp_path):
    text = json.dumps([upstream(1), upstream(2)])
    obs = read_text(tmp_path, text[: len(text) - 40])
    assert by_ends(obs) == SYN and obs.files[0].malformed == 1 and "item 2: the JSON breaks off" in obs.malformed[0]


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "the file is empty"),
        ("not json\nat all\n", "2 malformed (first: capture.json:1: not JSON (a line cut by log rotation?))"),
        (json.dumps({"flow": None}) + "\n" + json.dumps({"lost_events": {}}) + "\n", "1 not a flow record or Log Analytics row; 1 not a flow"),
    ],
    ids=["empty", "not JSON", "no flows"],
)
def test_a_file_of_which_nothing_could_be_read_says_so_with_its_first_reasons(tmp_path, text, why):
    obs = read_text(tmp_path, text)
    (line,) = obs.unreadable
    assert line.startswith("capture.json: no flow records or Log Analytics rows could be read") and why in line


def test_a_file_of_only_icmp_or_replies_was_read_even_though_it_adds_no_connection(tmp_path):
    obs = read_text(tmp_path, json.dumps(upstream(3)) + "\n")
    assert obs.connections == {} and obs.unreadable == []


def test_an_http_and_a_dns_request_keep_what_their_rules_are_judged_on(tmp_path):
    dns = upstream(4)
    obs = read_text(tmp_path, json.dumps(dns) + "\n" + json.dumps(upstream(9)) + "\n")
    queries = [c.queries for c in obs.connections.values() if c.port == 53]
    assert queries == [{"productpage.bookinfo.svc.cluster.local"}]


def test_an_outside_destination_keeps_the_names_its_source_looked_it_up_under(tmp_path):
    line = flow_line(pod("frontend", app="frontend"), WORLD, "52.1.1.1", 443, destination_names=["API.Example.com.", "api.example.com"])
    (c,) = read_text(tmp_path, line + "\n").connections.values()
    assert c.dst.names == ("api.example.com",)
    (c,) = read_text(tmp_path, flow_line(pod("frontend", app="frontend"), WORLD, "52.1.1.1", 443) + "\n").connections.values()
    assert c.dst.names is None


def test_the_host_end_of_a_connection_keeps_its_address(tmp_path):
    (c,) = read_text(tmp_path, flow_line(HOST, pod("backend", app="backend"), "10.244.0.62", 80, src_ip="10.224.0.4") + "\n").connections.values()
    assert c.src.display == "host 10.224.0.4"


def test_a_pod_a_proxy_record_names_without_labels_takes_the_labels_another_record_gives_the_same_pod(tmp_path):
    details = {"namespace": "bookinfo", "labels": ["k8s:app=details", "k8s:version=v1"], "pod_name": "details-v1-79f774bdb9-m4j4k"}
    syn = flow_line(pod("bookinfo", app="productpage"), details, "10.244.1.193", 9080, sport=52818)
    request = upstream(9)  # productpage -> details, the destination reported as reserved:world with its pod name
    request["flow"]["source"] = pod("bookinfo", app="productpage")
    obs = read_text(tmp_path, syn + "\n" + json.dumps(request) + "\n")
    (c,) = obs.connections.values()
    assert c.dst.labels == (("app", "details"), ("version", "v1")) and (c.count, c.l7_records) == (1, 1)
    assert [r.text for r in c.requests.values()] == ["GET /details/0"]


def test_a_reply_is_counted_without_parsing_but_a_request_quoting_the_reply_key_in_a_header_is_still_read(tmp_path):
    request = upstream(10)
    request["flow"]["l7"]["http"]["headers"].append({"key": "X-Note", "value": '"is_reply":true'})
    text = json.dumps(upstream(3), separators=(",", ":")) + "\n" + json.dumps(request, separators=(",", ":")) + "\n"
    assert '\\"is_reply\\":true' in text
    obs = read_text(tmp_path, text)
    assert obs.files[0].skipped == {"replies": 1} and obs.files[0].kinds == {"Hubble flow": 2}
    (c,) = obs.connections.values()
    assert [r.text for r in c.requests.values()] == ["GET /reviews/0"]


def test_blank_lines_a_reply_and_a_line_cut_short_inside_a_capture_do_not_end_its_reading(tmp_path):
    line = json.dumps(upstream(1), separators=(",", ":"))
    reply = json.dumps(upstream(3), separators=(",", ":"))
    obs = read_text(tmp_path, "\n".join(["", line, "   ", reply, line[:40], "", BARE, ""]) + "\n")
    counts = obs.files[0]
    assert counts.records == 4 and counts.malformed == 1 and counts.skipped == {"replies": 1}
    assert counts.kinds == {"Hubble flow": 2, "bare flow (hubble CLI before v0.11)": 1}
    assert by_ends(obs) == SYN  # the bare line is the same record: the same connection, counted once


# -- where each record sits, in every shape ---------------------------------------------------------

BARE = json.dumps(upstream(1)["flow"])
ROW = la_row("frontend", "frontend", "backend", "backend", 80)


@pytest.mark.parametrize(
    "text, shape, kind",
    [
        (BARE + "\n" + BARE + "\n", "lines", "bare flow (hubble CLI before v0.11)"),
        (json.dumps(ROW, indent=2) + "\n" + json.dumps(ROW, indent=2), "values", "Log Analytics row"),
        (json.dumps([ROW, ROW]), "array", "Log Analytics row"),
        (api_tables([ROW, ROW]), "tables", "Log Analytics row"),
        (json.dumps({"tables": [{"columns": [{"name": k} for k in ROW], "rows": [list(ROW.values())] * 2}]}) + "\n", "lines", "Log Analytics row"),
    ],
    ids=["bare flow lines", "pretty rows", "array of rows", "query API tables", "tables on one line"],
)
def test_every_shape_counts_each_record_it_reads_under_its_kind(tmp_path, text, shape, kind):
    counts = read_text(tmp_path, text).files[0]
    assert (counts.shape, dict(counts.kinds), counts.malformed) == (shape, {kind: 2}, 0)


@pytest.mark.parametrize(
    "text, where",
    [
        (BARE + "\n[" + BARE + ", 5]\n", "capture.json:2[2]: not a JSON object"),
        (json.dumps(upstream(1), indent=2) + "\n7\n", "capture.json:value 2: not a JSON object"),
        (json.dumps([upstream(1), "x"]), "capture.json:item 2: not a JSON object"),
        (json.dumps({"tables": [{"columns": [{"name": "a"}], "rows": [5]}]}) + "\n", "capture.json:1 row 1: not a row object"),
        (json.dumps({"tables": [{"columns": [{"name": "a"}], "rows": "a"}]}) + "\n", "capture.json:1 row 1: not a row object"),
        (json.dumps({"tables": [{"columns": [{"name": "a"}], "rows": [5]}]}, indent=1), "capture.json:row 1: not a row object"),
        (json.dumps({**upstream(1)["flow"], "l4": {"TCP": [80]}}) + "\n", "capture.json:1: AttributeError reading the flow"),
        (json.dumps([{**ROW, "Layer4": "{not json"}]), "capture.json:item 1: JSONDecodeError reading the row"),
    ],
    ids=["item of a line", "pretty value", "array item", "row of a table on a line", "rows of a table on a line not a list",
         "row of a streamed table", "bare flow", "row"],
)
def test_a_record_that_cannot_be_read_is_named_by_where_it_sits_and_why(tmp_path, text, where):
    obs = read_text(tmp_path, text)
    assert obs.malformed == [where] and obs.files[0].malformed == 1


@pytest.mark.parametrize("shape", ["array", "values", "tables"])
@pytest.mark.parametrize("kept", [0, 1])
def test_a_stream_that_breaks_off_names_the_record_it_broke_in(tmp_path, shape, kept):
    whole = {"array": json.dumps([ROW] * 3), "values": "\n".join(json.dumps(ROW, indent=2) for _ in range(3)), "tables": api_tables([ROW] * 3)}[shape]
    # cut inside record kept + 1: a few characters into its first "frontend"
    marks = [m.start() for m in re.finditer(re.escape('"frontend"'), whole)]
    cut = marks[len(marks) // 3 * kept] + 4
    obs = read_text(tmp_path, whole[:cut])
    counts = obs.files[0]
    name = {"array": "item", "values": "value", "tables": "row"}[shape]
    assert (counts.shape, counts.kinds.get("Log Analytics row", 0), counts.records, counts.malformed) == (shape, kept, kept + 1, 1)
    assert obs.malformed[0].startswith(f"capture.json:{name} {kept + 1}: the JSON breaks off here (")


@pytest.mark.parametrize("indent", [2, None], ids=["pretty-printed values", "one record a line"])
def test_a_connection_is_dated_by_its_flows_time_or_else_by_its_envelopes(tmp_path, indent):
    inner, outer = upstream(1), upstream(2)
    del outer["flow"]["time"]
    outer["time"] = "2030-01-01T00:00:00Z"
    obs = read_text(tmp_path, json.dumps(inner, indent=indent) + "\n" + json.dumps(outer, indent=indent))
    (conn,) = obs.connections.values()
    assert (conn.first, conn.last, conn.seen) == (inner["flow"]["time"], "2030-01-01T00:00:00Z", 2)


def test_a_file_of_lines_counts_flows_and_replies_alike_whether_hubbles_compact_lines_or_other_writers(tmp_path):
    request = flow(pod("shop", app="web"), pod("shop", app="api"), "10.244.0.8", 80)
    older = {k: v for k, v in request.items() if k != "is_reply"} | {"IP": {"source": "10.244.0.9", "destination": "10.244.0.8"}}
    reply = request | {"is_reply": True}
    compact = {"separators": (",", ":")}
    text = "\n".join([json.dumps({"flow": request}, **compact), json.dumps({"flow": older}, **compact),
                      json.dumps({"flow": reply}, **compact), json.dumps({"flow": reply}), ""])
    f = read_text(tmp_path, text).files[0]
    assert (f.kinds, f.records, f.skipped) == ({"Hubble flow": 4}, 4, {NOT_A_CONNECTION["reply"]: 2})


# -- Log Analytics rows, column by column --------------------------------------------------------------


def test_a_row_knows_a_pod_by_its_workload_or_else_its_name_never_by_labels(tmp_path):
    rows = [la_row("frontend", "frontend", "backend", "", 80, DestinationPodName="backend-0", SourcePodName="frontend-1"),
            la_row("frontend", "", "", "", 443, DestinationIdentity=2, IP={"source": "10.244.1.5", "destination": "20.50.2.40"})]
    a, b = read_text(tmp_path, json.dumps(rows)).connections.values()
    assert (a.src.workload, a.src.pod, a.src.labels_known) == ("frontend", None, False)
    assert (a.dst.workload, a.dst.pod, a.dst.labels_known) == (None, "backend-0", False)
    assert (b.dst.reserved, b.dst.labels_known) == ("world", False)


def test_a_row_without_flow_counts_weighs_one_and_each_file_counts_its_connection_records(tmp_path):
    row = {k: v for k, v in la_row("frontend", "frontend", "backend", "backend", 80).items() if not k.endswith("FlowCount")}
    other = la_row("frontend", "frontend", "backend", "backend", 8080)
    obs = read_text(tmp_path, json.dumps([row, row, other]))
    assert by_ends(obs) == {("frontend/frontend", "backend/backend", 80, "TCP"): 2, ("frontend/frontend", "backend/backend", 8080, "TCP"): 2}
    assert obs.files[0].connections == 3  # rows that are connection records, repeats included


def test_a_row_with_a_protocol_column_but_no_port_column_reads_both_from_layer4(tmp_path):
    row = la_row("frontend", "frontend", "backend", "backend", 80, Protocol="UDP", Layer4={"TCP": {"destination_port": 80}})
    assert by_ends(read_text(tmp_path, json.dumps([row]))) == FRONTEND_BACKEND


def test_an_icmp_row_is_skipped_as_no_connection(tmp_path):
    row = la_row("frontend", "frontend", "backend", "backend", 80, Layer4={"ICMPv4": {"type": 8}})
    counts = read_text(tmp_path, json.dumps([row, row])).files[0]
    assert (counts.connections, dict(counts.skipped)) == (0, {NOT_A_CONNECTION["icmp"]: 2})


def test_the_summarized_address_columns_win_over_the_ip_column(tmp_path):
    row = la_row("", "", "", "", 443, SourceIdentity=2, DestinationIdentity=2, SourceAddress="52.1.1.1", DestinationAddress="52.2.2.2",
                 IP={"source": "10.1.1.1", "destination": "10.2.2.2"})
    (c,) = read_text(tmp_path, json.dumps([row])).connections.values()
    assert (c.src.ip, c.dst.ip) == ("52.1.1.1", "52.2.2.2")


def test_an_object_with_two_column_names_of_the_table_is_a_row(tmp_path):
    obs = read_text(tmp_path, json.dumps([{"SourceNamespace": "a", "DestinationNamespace": "b"}]))
    assert obs.files[0].kinds == {"Log Analytics row": 1}


def test_numbers_az_printed_as_decimal_text_read_as_numbers(tmp_path):
    row = la_row("frontend", "frontend", "", "", 80, DestinationIdentity="2.0", IP={"destination": "52.1.1.1"}, EgressFlowCount="3.0",
                 IngressFlowCount="0", UnknownDirectionFlowCount="None")
    (c,) = read_text(tmp_path, json.dumps([row])).connections.values()
    assert (c.dst.reserved, c.seen) == ("world", 3)


@pytest.mark.parametrize("flow, camel_case", [
    ({"source": {"podName": "a-0"}}, True),
    ({"destination": {"clusterName": "aks"}}, True),
    ({"l4": {"TCP": {"destinationPort": 80}}}, True),
    ({"source": {"pod_name": "a-0"}, "l4": {"TCP": {"destination_port": 80}}}, False),
    ({"is_reply": False, "source": {"podName": "a-0"}}, False),
], ids=["source pod name", "destination cluster name", "destination port", "snake case", "is_reply decides"])
def test_a_flow_without_is_reply_or_event_type_is_told_camel_case_by_any_camel_case_name_it_has(flow, camel_case):
    assert hubble.is_camel(flow) is camel_case


def test_a_file_keeps_the_first_few_malformed_records_as_examples_and_counts_them_all(tmp_path):
    obs = read_text(tmp_path, "not json\n" * (EXAMPLES + 2))
    assert obs.files[0].malformed == EXAMPLES + 2 and obs.malformed == [f"capture.json:{n}: not JSON (a line cut by log rotation?)" for n in range(1, EXAMPLES + 1)]


# -- streamed tables, row by row ---------------------------------------------------------------------------


def test_a_streamed_table_numbers_and_counts_every_row_past_the_second(tmp_path):
    text = api_tables([ROW] * 3)
    # the third row broken: the first two are read, the third is named
    cut = [m.start() for m in re.finditer(re.escape('"frontend"'), text)][-1] + 4
    obs = read_text(tmp_path, text[:cut])
    counts = obs.files[0]
    assert (counts.kinds.get("Log Analytics row"), counts.records, counts.malformed) == (2, 3, 1)
    assert obs.malformed[0].startswith("capture.json:row 3: the JSON breaks off here (")


def test_a_table_that_breaks_off_quotes_the_parsers_first_line(tmp_path):
    import io

    import ijson

    text = api_tables([ROW])
    cut = text[: text.index('"frontend"') + 4]
    with pytest.raises(ijson.JSONError) as parser:
        list(ijson.parse(io.BytesIO(cut.encode())))
    first = str(parser.value).splitlines()[0][:80]
    assert first  # the parser's own words, measured here, not typed in
    assert read_text(tmp_path, cut).malformed == [f"capture.json:row 1: the JSON breaks off here ({first})"]


def test_rows_of_a_streamed_table_that_are_not_rows_are_each_named_by_their_own_number(tmp_path):
    table = json.loads(api_tables([ROW]))["tables"][0]
    table["rows"] = [5, table["rows"][0], "x", table["rows"][0]]
    obs = read_text(tmp_path, json.dumps({"tables": [table]}, indent=1))
    counts = obs.files[0]
    assert obs.malformed == ["capture.json:row 1: not a row object", "capture.json:row 3: not a row object"]
    assert (counts.records, counts.kinds.get("Log Analytics row"), counts.malformed) == (4, 2, 2)


def test_a_malformed_row_of_a_streamed_table_is_named_by_its_number(tmp_path):
    obs = read_text(tmp_path, api_tables([ROW, {**ROW, "Layer4": "{not json"}]))
    assert obs.malformed == ["capture.json:row 2: JSONDecodeError reading the row"]


@pytest.mark.parametrize("indent", [1, None], ids=["streamed", "on one line"])
def test_a_table_whose_rows_are_objects_is_read_like_one_whose_rows_are_lists(tmp_path, indent):
    doc = {"tables": [{"columns": [{"name": k} for k in ROW], "rows": [ROW, ROW]}]}
    obs = read_text(tmp_path, json.dumps(doc, indent=indent))
    assert (obs.files[0].kinds, obs.malformed) == ({"Log Analytics row": 2}, [])
    assert by_ends(obs) == {key: 2 * seen for key, seen in FRONTEND_BACKEND.items()}


@pytest.mark.parametrize("indent", [1, None], ids=["streamed", "on one line"])
def test_a_table_with_dynamic_columns_as_json_values_rather_than_text_is_read_whole(tmp_path, indent):
    doc = {"tables": [{"columns": [{"name": k} for k in ROW], "rows": [list(ROW.values())] * 2}]}
    obs = read_text(tmp_path, json.dumps(doc, indent=indent))
    assert (obs.files[0].kinds, obs.malformed) == ({"Log Analytics row": 2}, [])
    assert by_ends(obs) == {key: 2 * seen for key, seen in FRONTEND_BACKEND.items()}


def test_a_table_may_name_its_columns_by_plain_strings_and_leave_out_what_it_lacks():
    from policies.observed.log_analytics import rows_of_table

    assert rows_of_table({"columns": ["a", "b"], "rows": [[1, 2]]}) == [{"a": 1, "b": 2}]
    assert rows_of_table({"columns": None, "rows": None}) == []
    assert rows_of_table({"columns": [{"name": "a"}], "rows": {"a": 1}}) == [{"a": 1}]


def test_a_row_with_no_port_is_skipped_as_no_connection_not_reported_malformed(tmp_path):
    rows = [{**ROW, "Layer4": {"TCP": {}}}, {**ROW, "Layer4": {}, "Protocol": "ICMPv4", "DestinationPort": 0}]
    obs = read_text(tmp_path, json.dumps(rows))
    assert (obs.malformed, obs.connections, obs.files[0].skipped) == ([], {}, {NOT_A_CONNECTION["icmp"]: 2})


def test_a_row_from_outside_the_cluster_takes_its_source_address_from_the_ip_column(tmp_path):
    row = la_row("", "", "backend", "backend", 80, SourceIdentity=2, IP={"source": "20.50.2.40", "destination": "10.244.1.5"})
    (c,) = read_text(tmp_path, json.dumps([row])).connections.values()
    assert (c.src.reserved, c.src.ip, c.dst.workload) == ("world", "20.50.2.40", "backend")


def test_records_that_are_not_flows_are_counted_each_under_what_they_are(tmp_path):
    lines = [{"node_status": {}}, {"lost_events": {}}, {"hello": 1}, {"hello": 2}, {"hello": 3},
             {"source": {"namespace": "a"}, "note": "has an end but no flow's marks"}]
    counts = read_text(tmp_path, "\n".join(json.dumps(x) for x in lines) + "\n").files[0]
    assert dict(counts.skipped) == {"not a flow (node status, lost or agent events)": 2, "not a flow record or Log Analytics row": 4}
    assert (counts.records, counts.malformed, dict(counts.kinds)) == (6, 0, {})


def test_a_flow_that_cannot_be_read_is_named_by_where_it_sits_in_every_envelope(tmp_path):
    bad = {**upstream(1)["flow"], "l4": {"TCP": [80]}}
    text = "\n".join([json.dumps({"flow": bad}), json.dumps({"tables": [{"columns": [{"name": "a"}], "rows": [5]}, "x"]})]) + "\n"
    assert read_text(tmp_path, text).malformed == ["capture.json:1: AttributeError reading the flow", "capture.json:2 row 1: not a row object"]
    assert read_text(tmp_path, json.dumps([{"flow": bad}])).malformed == ["capture.json:item 1: AttributeError reading the flow"]


def test_a_bare_flow_without_a_time_is_undated_not_dated_by_an_envelope(tmp_path):
    bare = {k: v for k, v in upstream(1)["flow"].items() if k != "time"}
    (c,) = read_text(tmp_path, json.dumps(bare) + "\n").connections.values()
    assert (c.first, c.last) == ("", "")


def test_an_empty_address_is_no_address_not_a_malformed_record(tmp_path):
    obs = read_text(tmp_path, flow_line(WORLD, pod("frontend", app="frontend"), "10.244.0.5", 8080, src_ip="") + "\n")
    (c,) = obs.connections.values()
    assert (obs.malformed, c.src.reserved, c.src.ip) == ([], "world", None)


@pytest.mark.parametrize("raw", [
    {"namespace": "frontend"},  # masked down to its namespace
    {"namespace": "frontend", "labels": ["container:io.kubernetes.container.name=web"]},  # labels of another source only
], ids=["namespace only", "container labels only"])
def test_an_end_with_a_namespace_and_nothing_reserved_is_a_pod_whose_labels_are_unknown(raw):
    e = hubble.end(raw)
    assert (e.namespace, e.reserved, e.labels_known, e.unattributed) == ("frontend", None, False, False)


def test_sctp_is_a_connection_and_each_icmp_record_is_counted_apart(tmp_path):
    icmp = json.loads(flow_line(pod("frontend", app="frontend"), WORLD, "52.1.1.1", 0))
    icmp["flow"]["l4"] = {"ICMPv4": {"type": 8}}
    text = "\n".join([flow_line(pod("frontend", app="frontend"), WORLD, "52.1.1.1", 3868, proto="SCTP"), json.dumps(icmp), json.dumps(icmp)])
    obs = read_text(tmp_path, text + "\n")
    assert [c.protocol for c in obs.connections.values()] == ["SCTP"]
    assert obs.files[0].skipped == {NOT_A_CONNECTION["icmp"]: 2}

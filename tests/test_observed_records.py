"""Counting what records say: one connection per initiator, destination, port and protocol, with its
dates, requests, lookups and Cilium's verdicts, and pods named without labels resolved to their labels."""

from __future__ import annotations

import pytest

from policies.observed import records
from policies.observed.records import MAX_REQUESTS, End, Observations, summary
from policies.verdict.http import Request

A = End("shop", (("app", "web"),))
B = End("shop", (("app", "api"),))
B_UNLABELLED = End("shop", labels_known=False, pod="api-7c9f8d6b5c-q4z8w")


def only(obs: Observations):
    (c,) = obs.connections.values()
    return c


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_outside_1_to_65535_is_refused_naming_it(port):
    with pytest.raises(ValueError, match=f"^port {port} is out of range$"):
        Observations().add(A, B, port, "TCP", "", None)


@pytest.mark.parametrize("port", [1, 65535])
def test_the_first_and_last_ports_are_connections(port):
    assert Observations().add(A, B, port, "TCP", "", None).port == port


def test_each_record_without_an_instance_or_weight_counts_one():
    obs = Observations()
    for _ in range(3):
        obs.add(A, B, 80, "TCP", "", None)
    assert only(obs).count == 3


def test_a_connection_is_dated_from_its_earliest_to_its_latest_record_whatever_their_order():
    obs = Observations()
    for when in ("2026-12-01T10:00:05Z", "2026-12-01T10:00:01Z", "2026-12-01T10:00:09Z", "2026-12-01T10:00:03Z"):
        obs.add(A, B, 80, "TCP", when, None)
    c = only(obs)
    assert (c.first, c.last) == ("2026-12-01T10:00:01Z", "2026-12-01T10:00:09Z")


def test_an_undated_first_record_leaves_the_connection_to_be_dated_by_the_next():
    obs = Observations()
    obs.add(A, B, 80, "TCP", "", None)
    assert (only(obs).first, only(obs).last) == ("", "")
    obs.add(A, B, 80, "TCP", "2026-12-01T10:00:05Z", None)
    assert (only(obs).first, only(obs).last) == ("2026-12-01T10:00:05Z", "2026-12-01T10:00:05Z")


def test_each_l7_record_counts_as_an_l7_record_not_a_connection_and_an_http_one_adds_no_lookup():
    obs = Observations()
    obs.add(A, B, 80, "TCP", "", None, request=Request("GET", "/a"))
    obs.add(A, B, 80, "TCP", "", None, request=Request("GET", "/b"))
    c = only(obs)
    assert (c.count, c.l7_records, c.seen, c.queries) == (0, 2, 2, set())
    assert sorted(c.requests) == [("GET", "/a", None), ("GET", "/b", None)]


def test_a_connection_keeps_at_most_max_requests_distinct_requests_and_lookups():
    obs = Observations()
    for i in range(MAX_REQUESTS + 3):
        obs.add(A, B, 80, "TCP", "", None, request=Request("GET", f"/{i}"))
        obs.add(A, B, 53, "UDP", "", None, query=f"n{i}.example")
    http, dns = obs.connections.values()
    assert (len(http.requests), len(dns.queries)) == (MAX_REQUESTS, MAX_REQUESTS)
    assert (http.l7_records, dns.l7_records) == (MAX_REQUESTS + 3, MAX_REQUESTS + 3)
    assert ("GET", f"/{MAX_REQUESTS - 1}", None) in http.requests and ("GET", f"/{MAX_REQUESTS}", None) not in http.requests


def test_the_same_instance_at_a_second_observation_point_is_not_counted_again_within_the_window(monkeypatch):
    monkeypatch.setattr(records, "DEDUPE_WINDOW", 2)
    obs = Observations()
    assert obs.add(A, B, 80, "TCP", "", "a") is not None
    assert obs.add(A, B, 80, "TCP", "", "b") is not None
    assert obs.add(A, B, 80, "TCP", "", "a") is None  # two markers kept: "a" is still remembered
    assert obs.add(A, B, 80, "TCP", "", "c") is not None  # a third: "a", the oldest, is forgotten
    assert obs.add(A, B, 80, "TCP", "", "b") is None
    assert obs.add(A, B, 80, "TCP", "", "a") is not None
    assert only(obs).count == 4


def test_a_pod_named_without_labels_takes_its_labelled_end_and_its_connection_merges_into_the_labelled_one():
    obs = Observations()
    obs.pods[("shop", B_UNLABELLED.pod)] = B
    obs.add(A, End("shop", (("app", "db"),)), 5432, "TCP", "2026-12-01T10:00:00Z", None)  # untouched, listed first
    labelled = obs.add(A, B, 80, "TCP", "2026-12-01T10:00:05Z", None, 2)
    labelled.requests[("GET", "/a", None)] = Request("GET", "/a")
    labelled.queries.add("a.example")
    labelled.cilium_said("ingress", "matched")
    obs.add(A, B_UNLABELLED, 80, "TCP", "2026-12-01T10:00:01Z", None, 3)
    obs.add(A, B_UNLABELLED, 80, "TCP", "2026-12-01T10:00:09Z", None, request=Request("GET", "/b"))
    obs.add(A, B_UNLABELLED, 80, "TCP", "", None, query="b.example")
    obs.connections[(A, B_UNLABELLED, 80, "TCP")].cilium_said("ingress", "denied")
    obs.add(B_UNLABELLED, A, 8080, "TCP", "2026-12-01T10:00:02Z", None)  # the pod as the initiator, alone: renamed
    obs.resolve()
    assert sorted((c.src.display, c.dst.display, c.port) for c in obs.connections.values()) == [
        ("shop/app=api", "shop/app=web", 8080), ("shop/app=web", "shop/app=api", 80), ("shop/app=web", "shop/app=db", 5432)]
    c = obs.connections[(A, B, 80, "TCP")]
    assert (c.count, c.l7_records, c.first, c.last) == (5, 2, "2026-12-01T10:00:01Z", "2026-12-01T10:00:09Z")
    assert sorted(c.requests) == [("GET", "/a", None), ("GET", "/b", None)] and c.queries == {"a.example", "b.example"}
    assert c.cilium_verdicts == {"ingress": "denied"}
    assert obs.connections[(B, A, 8080, "TCP")].first == "2026-12-01T10:00:02Z"


@pytest.mark.parametrize("held", [MAX_REQUESTS - 1, MAX_REQUESTS])
def test_merging_a_resolved_connection_keeps_at_most_max_requests_and_lookups(held):
    obs = Observations()
    obs.pods[("shop", B_UNLABELLED.pod)] = B
    for i in range(held):
        obs.add(A, B, 80, "TCP", "", None, request=Request("GET", f"/{i}"), query=f"n{i}.example")
    for i in range(3):
        obs.add(A, B_UNLABELLED, 80, "TCP", "", None, request=Request("GET", f"/x{i}"), query=f"x{i}.example")
    obs.resolve()
    c = only(obs)
    assert (len(c.requests), len(c.queries), c.l7_records) == (MAX_REQUESTS, MAX_REQUESTS, held + 3)


def test_the_summary_counts_what_was_skipped_by_reason():
    obs = Observations()
    counts = records.FileCounts("capture.json")
    counts.skipped["replies"] += 2
    obs.files.append(counts)
    assert summary(obs)["skipped"] == {"replies": 2}

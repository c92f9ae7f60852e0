"""Breadth guardrails: address peers and authorized ranges judged by the public addresses they hold."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import guardrails as g
from policies.guardrails.breadth import NOT_GLOBAL, parse_limit, public_addresses
from tests.test_guardrails import cluster, cnp, resources

ONLY = {r.name: "disabled" for r in g.RULES}


def found(rule: str, rs: list[g.Resource], settings: dict | None = None) -> list[str]:
    report = g.evaluate(rs, ONLY | {rule: "mandatory"}, settings={rule: settings} if settings else None)
    return [v.message for v in report.violations]


def egress(*entries: dict) -> g.Resource:
    return cnp("out", "backend", {"endpointSelector": {}, "egress": list(entries)})


# -- counting --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 6])
def test_every_range_counted_as_not_public_is_not_global_to_pythons_special_purpose_registry(version):
    for cidr in NOT_GLOBAL[version]:
        net = ipaddress.ip_network(cidr)
        middle = net.network_address + net.num_addresses // 2
        assert not any(a.is_global for a in (net.network_address, middle, net.broadcast_address)), cidr


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_an_address_counted_as_not_public_is_never_one_python_calls_global(n):
    address = ipaddress.IPv4Address(n)
    if public_addresses([(f"{address}/32", ())]).ipv4 == 0:
        assert not address.is_global


def test_half_of_ipv4_counts_as_half_of_ipv4_less_what_is_not_public_in_it():
    not_public_in_upper_half = sum(
        ipaddress.ip_network(c).num_addresses for c in NOT_GLOBAL[4] if ipaddress.ip_network(c).subnet_of(ipaddress.ip_network("128.0.0.0/1"))
    )
    assert public_addresses([("128.0.0.0/1", ())]).ipv4 == 2**31 - not_public_in_upper_half


def test_overlapping_ranges_count_once_and_an_except_cuts_its_own_range_only():
    assert public_addresses([("20.0.0.0/16", ()), ("20.0.128.0/17", ())]).ipv4 == 2**16
    assert public_addresses([("20.0.0.0/15", ("20.1.0.0/16",))]).ipv4 == 2**16
    assert public_addresses([("20.0.0.0/15", ("20.1.0.0/16",)), ("20.1.0.0/16", ())]).ipv4 == 2**17


def test_private_ranges_hold_no_public_address():
    assert public_addresses([("10.0.0.0/8", ()), ("192.168.0.0/16", ()), ("fd00::/8", ())]) == g_breadth(0, 0)


def g_breadth(v4: int, v6: int):
    from policies.guardrails.breadth import Breadth

    return Breadth(v4, v6)


# -- no-broad-peers ------------------------------------------------------------------------------------------------------


def test_an_egress_peer_of_half_the_internet_is_flagged_though_it_is_no_slash_zero():
    (line,) = found("no-broad-peers", [egress({"toCIDR": ["128.0.0.0/1"]})])
    assert line.startswith("CiliumNetworkPolicy backend/out egress: its address ranges hold ")
    assert "public IPv4 addresses, more than the /16 this stack allows (65,536)" in line


def test_splitting_a_range_into_rules_of_one_policy_does_not_hide_its_breadth():
    halves = [{"toCIDRSet": [{"cidr": "20.0.0.0/16"}]}, {"toCIDR": ["20.1.0.0/16"]}]
    (line,) = found("no-broad-peers", [egress(*halves)])
    assert "131,072 public IPv4 addresses" in line


def test_a_range_of_exactly_the_limit_passes_and_its_except_counts():
    assert found("no-broad-peers", [egress({"toCIDR": ["20.0.0.0/16"]})]) == []
    assert found("no-broad-peers", [egress({"toCIDRSet": [{"cidr": "20.0.0.0/15", "except": ["20.1.0.0/16"]}]})]) == []


def test_private_peers_of_any_size_pass():
    assert found("no-broad-peers", [egress({"toCIDR": ["10.0.0.0/8", "172.16.0.0/12", "fd00::/8"]})]) == []


def test_ipv6_has_a_limit_of_its_own():
    (line,) = found("no-broad-peers", [egress({"toCIDR": ["2a01::/32"]})])
    assert "public IPv6 addresses, more than the /48 this stack allows" in line


def test_a_stacks_level_file_may_widen_the_limit():
    assert found("no-broad-peers", [egress({"toCIDR": ["20.0.0.0/9"]})], {"publicIpv4Limit": "/8"}) == []
    assert found("no-broad-peers", [egress({"toCIDR": ["20.0.0.0/7"]})], {"publicIpv4Limit": "/8"}) != []


def test_a_slash_zero_is_said_once_as_the_whole_internet():
    (line,) = found("no-broad-peers", [egress({"toCIDR": ["0.0.0.0/0"]})])
    assert "toCIDR: 0.0.0.0/0 allows the whole internet" in line


# -- aks-api-server-restricted ----------------------------------------------------------------------------------------------


def test_authorized_ranges_of_two_halves_of_the_internet_are_refused():
    rs = resources("prod")
    cluster(rs).props["apiServerAccessProfile"]["authorizedIPRanges"] = ["0.0.0.0/1", "128.0.0.0/1"]
    (line,) = found("aks-api-server-restricted", rs)
    assert line.startswith("ManagedCluster aks-zero-trust-prod: authorizedIPRanges hold ") and "more than the /16" in line


def test_authorized_ranges_within_the_limit_pass():
    rs = resources("prod")
    cluster(rs).props["apiServerAccessProfile"]["authorizedIPRanges"] = ["20.0.0.0/17", "20.9.0.0/17", "10.0.0.0/8"]
    assert found("aks-api-server-restricted", rs) == []


# -- level files --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["16", "/33", "/x", 16, None])
def test_a_limit_that_is_no_prefix_length_is_one_line_naming_the_setting(value):
    with pytest.raises(g.LevelConfigError) as e:
        g.stack_levels({"no-broad-peers": {"enforcementLevel": "mandatory", "publicIpv4Limit": value}}, "prod.json")
    assert e.value.lines == ['prod.json: no-broad-peers.publicIpv4Limit: must be a prefix length like "/16" ("/0" to "/32")']


def test_a_setting_of_another_rule_is_an_unknown_setting():
    with pytest.raises(g.LevelConfigError) as e:
        g.stack_levels({"workload-non-root": {"enforcementLevel": "mandatory", "publicIpv4Limit": "/16"}}, "prod.json")
    assert e.value.lines == ["prod.json: workload-non-root.publicIpv4Limit: unknown setting; the settings are: enforcementLevel, exceptable"]


def test_a_level_files_settings_reach_the_rule_they_belong_to():
    doc = {"no-broad-peers": {"enforcementLevel": "mandatory", "publicIpv4Limit": "/8"}, "aks-api-server-restricted": "mandatory"}
    assert g.stack_levels(json.loads(json.dumps(doc)), "x.json").settings == {"no-broad-peers": {"publicIpv4Limit": "/8"}}
    assert parse_limit("/8", "publicIpv4Limit") == 2**24

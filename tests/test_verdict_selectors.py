"""Label selectors as Cilium reads them: each key's source, the namespace a subject or a peer is scoped to,
and the selectors Cilium rejects, named by their path."""

from __future__ import annotations

import pytest

from policies.verdict.identity import NS_KEY
from policies.verdict.selectors import PolicyRejected, Requirement, Selector, _split_key, parse_selector, peer_selector, subject_selector


def sel(*requirements: Requirement) -> Selector:
    return Selector(frozenset(requirements))


def is_in(source: str, key: str, value: str) -> Requirement:
    return Requirement(source, key, "In", frozenset({value}))


@pytest.mark.parametrize("key, split", [
    ("$host", ("reserved", "host")),
    ("reserved.host", ("reserved", "host")),
    ("reserved:host", ("reserved", "host")),
    ("k8s:app", ("k8s", "app")),
    ("app", ("any", "app")),
    ("cidr:2001:db8::/32", ("cidr", "2001:db8::/32")),  # the source ends at the first colon
])
def test_a_keys_source_is_what_comes_before_its_first_colon_or_any_and_reserved_has_two_more_spellings(key, split):
    assert _split_key(key) == split


def test_no_selector_at_all_selects_everything_and_an_expression_keeps_its_operator_and_values():
    assert parse_selector(None, "spec.endpointSelector") == sel()
    raw = {"matchExpressions": [{"key": "k8s:tier", "operator": "NotIn", "values": ["db", "cache"]}, {"key": "app", "operator": "Exists"}]}
    assert parse_selector(raw, "x") == sel(Requirement("k8s", "tier", "NotIn", frozenset({"db", "cache"})), Requirement("any", "app", "Exists"))


@pytest.mark.parametrize("raw, message", [
    (["app"], "spec.endpointSelector: a label selector must be a mapping"),
    ({"matchLabels": {}, "matchNames": [], "any": 1}, "spec.endpointSelector: unknown selector field(s) ['any', 'matchNames']"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "In"}]},
     "spec.endpointSelector.matchExpressions[1]: In needs values"),
])
def test_a_selector_cilium_rejects_is_named_by_its_path_and_why(raw, message):
    with pytest.raises(PolicyRejected) as e:
        parse_selector(raw, "spec.endpointSelector")
    assert str(e.value) == message


def test_a_namespaced_subject_is_scoped_to_its_policys_namespace_whatever_namespace_it_names():
    raw = {"matchLabels": {"k8s:app": "api", f"k8s:{NS_KEY}": "other"}}
    assert subject_selector(raw, "shop", "x") == sel(is_in("k8s", "app", "api"), is_in("k8s", NS_KEY, "shop"))
    assert subject_selector(raw, None, "x") == sel(is_in("k8s", "app", "api"), is_in("k8s", NS_KEY, "other"))


def test_a_clusterwide_peer_is_any_pod_of_any_namespace_and_a_namespaced_one_of_its_own():
    raw = {"matchLabels": {"app": "api"}}
    assert peer_selector(raw, None, "x") == sel(is_in("any", "app", "api"), Requirement("k8s", NS_KEY, "Exists"))
    assert peer_selector(raw, "shop", "x") == sel(is_in("any", "app", "api"), is_in("k8s", NS_KEY, "shop"))


# -- reserved identities -----------------------------------------------------------------------------------


def test_an_api_server_given_an_address_lives_outside_the_cluster_at_that_one_address():
    from policies.verdict import entity

    e = entity("kube-apiserver", address="20.1.2.3")
    assert (e.outside, e.cidrs, e.reserved_names) == (True, ("20.1.2.3/32",), frozenset({"kube-apiserver", "world"}))
    assert (entity("kube-apiserver").outside, entity("kube-apiserver").cidrs) == (False, ())


@pytest.mark.parametrize("call, message", [
    (lambda entity: entity("mesh"), "'mesh' is not one of Cilium's reserved identities: world, kube-apiserver, host, remote-node, "
                                    "health, init, ingress, unmanaged"),
    (lambda entity: entity("world", node_labels={}), "only host and remote-node identities carry node labels"),
    (lambda entity: entity("host", address="10.0.0.1"), "only the kube-apiserver identity can live outside the cluster"),
])
def test_an_identity_cilium_has_no_such_reserved_label_for_is_refused_saying_why(call, message):
    from policies.verdict import entity

    with pytest.raises(ValueError) as e:
        call(entity)
    assert str(e.value) == message

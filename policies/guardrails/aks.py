"""Guardrails on the AKS cluster itself: the dataplane that enforces policies, and who can reach the API."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails import breadth
from policies.guardrails.resources import Resource

def check_cilium_dataplane(r: Resource) -> Iterator[tuple[Resource, str]]:
    network = r.props.get("networkProfile") or {}
    for key in ("networkPlugin", "networkDataplane", "networkPolicy"):
        want = "azure" if key == "networkPlugin" else "cilium"
        if network.get(key) != want:
            yield r, (
                f"{r.display}: networkProfile.{key} is {network.get(key)!r}; set it to {want!r} "
                "(Azure CNI powered by Cilium is what enforces the CiliumNetworkPolicies)"
            )


def check_entra_id_only(r: Resource) -> Iterator[tuple[Resource, str]]:
    aad = r.props.get("aadProfile") or {}
    if not r.props.get("disableLocalAccounts"):
        yield r, (
            f"{r.display}: local accounts are enabled (a static admin kubeconfig bypasses Entra ID); "
            "set disableLocalAccounts: true (zero-trust-aks:cluster.disableLocalAccounts)"
        )
    if not aad:
        yield r, f"{r.display}: no Entra ID integration; set aadProfile (zero-trust-aks:cluster.entraId)"
    elif not aad.get("enableAzureRBAC"):
        yield r, (
            f"{r.display}: Kubernetes authorization is not Azure RBAC; set aadProfile.enableAzureRBAC: true "
            "(zero-trust-aks:cluster.entraId.azureRbac)"
        )


def check_api_server_restricted(r: Resource, settings: Mapping[str, Any] | None = None) -> Iterator[tuple[Resource, str]]:
    access = r.props.get("apiServerAccessProfile") or {}
    if access.get("enablePrivateCluster"):
        return
    ranges = [str(x) for x in access.get("authorizedIPRanges") or []]
    if not ranges:
        yield r, (
            f"{r.display}: the API server is open to the internet; set apiServerAccessProfile.authorizedIPRanges "
            "or enablePrivateCluster (zero-trust-aks:cluster.authorizedIpRanges or privateCluster)"
        )
    everyone = False
    for cidr in ranges:
        try:
            if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
                everyone = True
                yield r, f"{r.display}: authorizedIPRanges contains {cidr}, which is everyone; list your own ranges"
        except ValueError:
            continue
    too_wide = [] if everyone else breadth.over(breadth.public_addresses((c, ()) for c in ranges), settings)
    if too_wide:
        yield r, (
            f"{r.display}: authorizedIPRanges hold {' and '.join(too_wide)}; list your own, narrower ranges "
            "(zero-trust-aks:cluster.authorizedIpRanges)"
        )

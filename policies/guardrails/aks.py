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


NIL_GUID = "00000000-0000-0000-0000-000000000000"
"""The all-zero GUID: no Entra ID object has it (the placeholder the examples ship with)."""


def check_admin_group_placeholder(r: Resource) -> Iterator[tuple[Resource, str]]:
    groups = [str(g) for g in (r.props.get("aadProfile") or {}).get("adminGroupObjectIDs") or []]
    if NIL_GUID in groups:
        yield r, (
            f"{r.display}: aadProfile.adminGroupObjectIDs holds the placeholder {NIL_GUID}, which no group has; "
            "name your AKS admins group (zero-trust-aks:cluster.entraId.adminGroupObjectIds)"
        )


def check_production_hardening(r: Resource) -> Iterator[tuple[Resource, str]]:
    """What AKS recommends for production clusters, one line per missing setting."""
    addons = r.props.get("addonProfiles") or {}
    security = r.props.get("securityProfile") or {}
    upgrade = r.props.get("autoUpgradeProfile") or {}
    access = r.props.get("apiServerAccessProfile") or {}
    missing = []
    if not (addons.get("azurepolicy") or {}).get("enabled"):
        missing.append(("the Azure Policy add-on is off", "addonProfiles.azurepolicy.enabled: true", "azurePolicy: true"))
    if not ((security.get("defender") or {}).get("securityMonitoring") or {}).get("enabled"):
        missing.append(("Defender for Containers is off", "securityProfile.defender.securityMonitoring.enabled: true", "defender: true"))
    if not (security.get("imageCleaner") or {}).get("enabled"):
        missing.append(("the image cleaner is off", "securityProfile.imageCleaner.enabled: true", "imageCleaner.enabled: true"))
    if upgrade.get("upgradeChannel") in (None, "none"):
        missing.append(("Kubernetes is never patched automatically", "autoUpgradeProfile.upgradeChannel: patch", "autoUpgrade.upgradeChannel: patch"))
    if upgrade.get("nodeOSUpgradeChannel") in ("None", "Unmanaged"):
        missing.append((
            f"the node OS channel {upgrade.get('nodeOSUpgradeChannel')!r} leaves node images unpatched by AKS",
            "autoUpgradeProfile.nodeOSUpgradeChannel: NodeImage or SecurityPatch", "autoUpgrade.nodeOsUpgradeChannel: NodeImage",
        ))
    if not access.get("disableRunCommand"):
        missing.append((
            "run command is on (az aks command invoke runs kubectl in the cluster for any ARM caller allowed to)",
            "apiServerAccessProfile.disableRunCommand: true", "disableRunCommand: true",
        ))
    for what, arm, key in missing:
        yield r, f"{r.display}: {what}; set {arm} (zero-trust-aks:cluster.{key})"


"""What each Cilium version accepts and enforces, and which Cilium AKS ships: one table each.

Config (which versions a stack may name), the verdict engine (what a policy
means) and the guardrails (which fields a cluster drops) all read these
tables; nothing else states a version fact.

Sources (see docs/policy-semantics.md):
- ``enableDefaultDeny``: added in Cilium 1.16 (cilium/cilium#30572, commit 75ac5d0b);
  the 1.14/1.15 CRD has no such field, so the API server prunes it.
- ``endPort``: added in 1.16 (commit 4fe60e52); pruned before, so a range
  shrinks to its start port.
- A rule with no ingress/ingressDeny/egress/egressDeny section is rejected
  from 1.17 (``Rule.Sanitize``, commit 4af386d1).
- Staging (``enableDefaultDeny`` off): L7 rules stopped dropping unmatched requests with the fix for
  cilium/cilium#38676 (#38841, April 2025; backported to 1.16.10 and 1.17.4 per the release notes the
  project's research recorded, in 1.18.0 on); ``enable-non-default-deny-policies`` is an agent flag from
  1.17 (#34940).
- ``**.`` as a multi-label DNS wildcard: 1.19 (cilium/cilium#43420); before,
  ``*`` matches one DNS label and ``**`` is the same as ``*``.
- AKS: "Azure CNI Powered by Cilium" (articles/aks/azure-cni-powered-by-cilium.md),
  the minimum Cilium version per Kubernetes minor version, and the AKS release notes
  (Azure/AKS CHANGELOG.md), which are newer: each row of ``AKS_RELEASES`` names its source.
"""

from __future__ import annotations

from dataclasses import dataclass

Version = tuple[int, int]
Patch = tuple[int, int, int]


@dataclass(frozen=True)
class CiliumFeatures:
    """What one Cilium minor version does with a policy."""

    version: Version
    enable_default_deny: bool
    """The CRD has ``spec.enableDefaultDeny`` (older CRDs prune it)."""
    end_port: bool
    """``toPorts.ports[].endPort`` makes a port range (older CRDs prune it)."""
    rejects_empty_rules: bool
    """A rule with no ingress, ingressDeny, egress or egressDeny section is rejected."""
    multi_label_dns_wildcard: bool
    """``**.example.com`` matches names several labels deep."""
    staging_safe_l7: Patch | None = None
    """The first patch release whose L7 (HTTP, DNS) rules drop nothing with ``enableDefaultDeny`` off
    (cilium/cilium#38676, fixed by #38841: an L7 allow-all beside the rules); None: none of this minor.
    Before it, a staged policy's L7 rules still refuse the requests they do not match."""
    non_default_deny_flag: bool = False
    """The agent has ``enable-non-default-deny-policies`` (cilium/cilium#34940); when it is false, Cilium
    forces default deny on, over a policy's ``enableDefaultDeny: false``."""

    @property
    def text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


CILIUM: dict[Version, CiliumFeatures] = {
    v.version: v
    for v in (
        CiliumFeatures((1, 14), enable_default_deny=False, end_port=False, rejects_empty_rules=False, multi_label_dns_wildcard=False),
        CiliumFeatures((1, 15), enable_default_deny=False, end_port=False, rejects_empty_rules=False, multi_label_dns_wildcard=False),
        CiliumFeatures((1, 16), enable_default_deny=True, end_port=True, rejects_empty_rules=False, multi_label_dns_wildcard=False,
                       staging_safe_l7=(1, 16, 10)),
        CiliumFeatures((1, 17), enable_default_deny=True, end_port=True, rejects_empty_rules=True, multi_label_dns_wildcard=False,
                       staging_safe_l7=(1, 17, 4), non_default_deny_flag=True),
        CiliumFeatures((1, 18), enable_default_deny=True, end_port=True, rejects_empty_rules=True, multi_label_dns_wildcard=False,
                       staging_safe_l7=(1, 18, 0), non_default_deny_flag=True),
        CiliumFeatures((1, 19), enable_default_deny=True, end_port=True, rejects_empty_rules=True, multi_label_dns_wildcard=True,
                       staging_safe_l7=(1, 19, 0), non_default_deny_flag=True),
    )
}

DEFAULT_CILIUM: Version = (1, 17)
"""Assumed when a stack pins no Kubernetes version (AKS's default Kubernetes, 1.32/1.33, ships 1.17)."""

POLICY_MAP_ENTRIES = 16384
"""Entries of one endpoint's policy map: Cilium's default (``bpf-policy-map-max``, settable
256-65,536 in pkg/option/config.go), which AKS does not let users change (cilium-config is
locked). An overflow drops traffic silently (cilium/cilium#45788)."""

@dataclass(frozen=True)
class AksCilium:
    """The Cilium minor version AKS ships with one Kubernetes minor version, and where that is said."""

    kubernetes: Version
    cilium: Version
    source: str


AKS_RELEASES: tuple[AksCilium, ...] = (
    AksCilium((1, 29), (1, 14), "azure-cni-powered-by-cilium.md, 2026-02 table: 1.14.20"),
    AksCilium((1, 30), (1, 14), "azure-cni-powered-by-cilium.md, 2026-02 table: 1.14.20"),
    AksCilium((1, 31), (1, 16), "azure-cni-powered-by-cilium.md, 2026-08 table: 1.16.16"),
    AksCilium((1, 32), (1, 17), "Azure/AKS CHANGELOG 2026-07-17: v1.17.17"),
    AksCilium((1, 33), (1, 17), "azure-cni-powered-by-cilium.md, 2026-08 table: 1.17.9"),
    AksCilium((1, 34), (1, 18), "Azure/AKS CHANGELOG 2026-07-17: v1.18.11"),
    AksCilium((1, 35), (1, 18), "azure-cni-powered-by-cilium.md, 2026-08 table: 1.18.6"),
    AksCilium((1, 36), (1, 19), "Azure/AKS CHANGELOG 2026-05-29: v1.19.3; 2026-07-17: v1.19.5 (the docs table's 1.18.9 is older)"),
    AksCilium((1, 37), (1, 19), "GA since 2026-10 (supported-kubernetes-versions.md); the CHANGELOG ships 1.19 for 1.36+"),
)
"""Kubernetes minor version on AKS -> the Cilium AKS ships with it, each with its source. Where the docs
table and the release notes differ, the newer release notes win (a new cluster gets what they ship)."""

AKS_CILIUM: dict[Version, Version] = {r.kubernetes: r.cilium for r in AKS_RELEASES}
"""Kubernetes minor version on AKS -> the Cilium minor version AKS ships with it."""


def features(version: Version) -> CiliumFeatures:
    """The facts of one Cilium minor version; ``ValueError`` for one the table does not know."""
    try:
        return CILIUM[version]
    except KeyError:
        known = ", ".join(v.text for v in CILIUM.values())
        raise ValueError(f"Cilium {version[0]}.{version[1]} is not known; known: {known}") from None


def parse_minor(text: str) -> Version:
    """``"1.33"`` or ``"1.33.2"`` -> ``(1, 33)``; ``ValueError`` otherwise."""
    parts = text.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a version like 1.33 or 1.33.2")
    return int(parts[0]), int(parts[1])


def aks_cilium(kubernetes_version: str | None) -> Version:
    """The Cilium AKS ships for a Kubernetes version (``DEFAULT_CILIUM`` when none is pinned).

    ``ValueError`` for a version AKS does not document Cilium for.
    """
    if not kubernetes_version:
        return DEFAULT_CILIUM
    minor = parse_minor(kubernetes_version)
    if minor not in AKS_CILIUM:
        known = ", ".join(f"{a}.{b}" for a, b in AKS_CILIUM)
        raise ValueError(
            f"AKS documents no Cilium for Kubernetes {minor[0]}.{minor[1]}; Kubernetes versions with Cilium on AKS: {known}"
        )
    return AKS_CILIUM[minor]

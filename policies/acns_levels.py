"""What each Advanced Container Networking Services (ACNS) security level allows: one table.

AKS's own feature table (articles/aks/azure-cni-powered-by-cilium.md, and
advanced-network-container-services-security-concepts.md): without ACNS
security, FQDN and L7 policies are refused by the AKS-installed admission
policy ``advanced-networking-validating-policy``; ``FQDN`` (ARM's default when
security is enabled) allows ``toFQDNs`` and DNS rules; ``L7`` is a superset
that adds HTTP, gRPC and Kafka rules. L7 rules are never supported in a
CiliumClusterwideNetworkPolicy.

Config (``zero-trust-aks:cluster.advancedNetworking.security``), the cluster
component (ARM's ``advancedNetworkPolicies``), rendering (DNS rules) and the
guardrails read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Feature = Literal["fqdn", "l7"]
"""What a policy may need: ``fqdn`` (toFQDNs, rules.dns) or ``l7`` (rules.http, rules.kafka, rules.l7)."""


@dataclass(frozen=True)
class AcnsLevel:
    setting: str
    """The config value (``zero-trust-aks:cluster.advancedNetworking.security``)."""
    arm: str
    """ARM's ``networkProfile.advancedNetworking.security.advancedNetworkPolicies``."""
    allows: frozenset[Feature]


LEVELS: tuple[AcnsLevel, ...] = (
    AcnsLevel("none", "None", frozenset()),
    AcnsLevel("fqdn", "FQDN", frozenset({"fqdn"})),
    AcnsLevel("l7", "L7", frozenset({"fqdn", "l7"})),
)
BY_SETTING = {level.setting: level for level in LEVELS}
BY_ARM = {level.arm: level for level in LEVELS}
ARM_DEFAULT_WHEN_ENABLED = "FQDN"
"""What ARM assumes when security is enabled without ``advancedNetworkPolicies``."""

POLICY_FEATURES: dict[str, Feature] = {
    "toFQDNs": "fqdn",
    "rules.dns": "fqdn",
    "rules.http": "l7",
    "rules.kafka": "l7",
    "rules.l7": "l7",
}
"""The policy fields that need an ACNS level, and which."""

L7_IN_CCNP = False
"""Whether AKS supports L7 rules in a CiliumClusterwideNetworkPolicy."""


def weakest_allowing(feature: Feature) -> AcnsLevel:
    """The lowest level that allows ``feature``."""
    return next(level for level in LEVELS if feature in level.allows)

"""Resources as Pulumi's policy engine sees them, and what the rules say of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policies import acns_levels
from policies.cilium_versions import DEFAULT_CILIUM, Version, aks_cilium
from policies.verdict import CCNP, CNP

MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
LEVELS = ("mandatory", "advisory", "disabled")
Level = Literal["mandatory", "advisory", "disabled"]



@dataclass(frozen=True)
class Resource:
    """A resource as the policy engine sees it: type token, name, inputs, URN."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:") and not self.type.startswith("kubernetes:helm")

    @property
    def kind(self) -> str:
        return str(self.props.get("kind") or self.type.rsplit(":", 1)[-1]) if self.is_kubernetes else ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.props.get("metadata") or {}

    @property
    def object_name(self) -> str:
        return str(self.metadata.get("name") or self.name)

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def display(self) -> str:
        """``CiliumNetworkPolicy backend/zt-default-deny``, ``ManagedCluster aks-zero-trust``."""
        if not self.is_kubernetes:
            return f"{self.type.rsplit(':', 1)[-1]} {self.props.get('resourceName') or self.name}"
        if self.kind in ("Namespace", CCNP):
            return f"{self.kind} {self.object_name}"
        return f"{self.kind} {self.namespace}/{self.object_name}"


@dataclass(frozen=True)
class Violation:
    rule: str
    level: str
    resource: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class Excepted:
    """A violation waived by an exception of ``guardrails/exceptions.yaml``, kept so reports can show it."""

    rule: str
    resource: str
    reason: str
    owner: str = ""
    expires: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    why: str
    level: Level
    scope: Literal["resource", "stack"]
    check: Callable[..., Iterable[tuple[Resource, str]]]
    """resource scope: ``check(resource)``; stack scope: ``check(resources)``; yields (resource, message)."""
    types: tuple[str, ...] = ()
    """Resource scope: the Kubernetes kinds or Pulumi type tokens the rule looks at."""
    exceptable: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    """What a level file may set for this rule besides its level, with the defaults: the check
    gets them as ``settings=`` (merged with the stack's)."""
    parse_setting: Callable[[Any, str], Any] | None = None
    """``parse_setting(value, name)``: raises ``ValueError`` (in words) for a value the rule cannot use."""

    def check_setting(self, name: str, value: Any) -> None:
        if self.parse_setting is not None:
            self.parse_setting(value, name)

    def run(self, subject: Any, settings: Mapping[str, Any] | None = None) -> Iterable[tuple[Resource, str]]:
        """The check on a resource or the stack's resources, with this rule's settings."""
        if not self.settings:
            return self.check(subject)
        return self.check(subject, settings={**self.settings, **(settings or {})})

    def applies_to(self, r: Resource) -> bool:
        return r.type in self.types or (r.is_kubernetes and r.kind in self.types)


# -- reading resources -----------------------------------------------------------------------


def policies(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.is_kubernetes and r.kind in (CNP, CCNP)]


def specs(policy: Resource) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    if isinstance(policy.props.get("spec"), Mapping):
        out.append(("spec", policy.props["spec"]))
    out += [(f"specs[{i}]", s) for i, s in enumerate(policy.props.get("specs") or []) if isinstance(s, Mapping)]
    return out


def entries(policy: Resource, sections: Sequence[str]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(where, section, entry) for every peer rule of the given sections."""
    for where, spec in specs(policy):
        for section in sections:
            for i, entry in enumerate(spec.get(section) or []):
                if isinstance(entry, Mapping):
                    yield f"{where}.{section}[{i}]", section, entry


def clusters(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.type == MANAGED_CLUSTER]


def cilium_version(resources: Sequence[Resource]) -> Version:
    """The Cilium AKS ships for the stack's cluster (the default when the version is unknown)."""
    found = clusters(resources)
    if not found:
        return DEFAULT_CILIUM
    try:
        return aks_cilium(found[0].props.get("kubernetesVersion"))
    except ValueError:
        return DEFAULT_CILIUM  # config refuses such versions; a hand-written program gets the default semantics


def acns_level(cluster: Resource) -> acns_levels.AcnsLevel:
    """The cluster's Advanced Container Networking security level."""
    adv = (cluster.props.get("networkProfile") or {}).get("advancedNetworking") or {}
    security = adv.get("security") or {}
    if adv.get("enabled") is False or not security.get("enabled"):
        return acns_levels.BY_ARM["None"]
    arm = str(security.get("advancedNetworkPolicies") or acns_levels.ARM_DEFAULT_WHEN_ENABLED)
    return acns_levels.BY_ARM.get(arm, acns_levels.BY_ARM["None"])

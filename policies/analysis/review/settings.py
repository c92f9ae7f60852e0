"""Settings that change what runs or what is proven without rendering a policy, compared.

A stack's settings are its validated config (every key with its effective value, defaults
included, so writing a default out is no change), the provider keys Pulumi reads
(``azure-native:*``, ``kubernetes:*``, ``pulumi:*`` and any other non-project key), its
guardrail levels and limits, and the exceptions that apply to it. Every key whose value
differs is one ``SettingChange``; none is left out, so "no change" means no change.

Each change is ``widened`` where the stack then allows, exposes or waives more, or proves
less (``verify: false``, a lower guardrail level, a new exception, an authorized range that
covers more); ``narrowed`` for the reverse; ``changed`` where neither holds or no direction
applies (a probe image, a subscription, a Kubernetes version); ``added``/``removed`` for a
provider key that appears or goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.config import PROJECT, StackConfig
from policies.guardrails import RuleException, StackLevels
from policies.guardrails.breadth import limits
from policies.analysis.review.rules import _compare

P = PROJECT


@dataclass(frozen=True)
class StackSettings:
    """What one side of a change says for one stack."""

    config: StackConfig
    raw: Mapping[str, Any]
    """The stack file's config as written (for the provider keys the model does not hold)."""
    ciphertexts: Mapping[str, str]
    """Each secret key's ciphertext: compared, never shown."""
    levels: StackLevels
    levels_file: str
    exceptions: tuple[RuleException, ...] = ()
    stack: str = ""


@dataclass(frozen=True)
class SettingChange:
    path: str
    change: str
    """``widened``, ``narrowed``, ``changed``, ``added`` or ``removed``."""
    before: str
    after: str
    note: str = ""

    @property
    def line(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.change} {self.path}: {self.before or '-'} -> {self.after or '-'}{note}"


def _show(value: Any) -> str:
    if isinstance(value, _Secret) or (isinstance(value, Mapping) and set(value) == {"secure"}):
        return "[secret]"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Dotted key paths to their values; lists and empty mappings are values of their own."""
    if isinstance(value, Mapping) and value and not set(value) == {"secure"}:
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    else:
        yield path, value


# -- directions -------------------------------------------------------------------------------------------


def _off_widens(before: Any, after: Any) -> str:
    """A protection that is on when true: turning it off widens."""
    return "widened" if before and not after else "narrowed" if after and not before else "changed"


def _on_widens(before: Any, after: Any) -> str:
    return _off_widens(after, before).replace("widened", "x").replace("narrowed", "widened").replace("x", "narrowed")


def _ranges(before: Any, after: Any) -> str:
    """Address ranges a list holds (None: no list, which for authorized ranges means everyone)."""
    if before is None or after is None:
        return "narrowed" if before is None else "widened"
    return _compare("cidr", {str(c) for c in before}, {str(c) for c in after}) or "changed"


def _peer_ranges(before: Any, after: Any) -> str:
    return _compare("cidr", {str(c) for c in before or ()}, {str(c) for c in after or ()}) or "changed"


def _excepts(before: Any, after: Any) -> str:
    """A peer's except ranges: fewer holes widen it."""
    return _compare("cidr", {str(c) for c in after or ()}, {str(c) for c in before or ()}) or "changed"


def _ordered(order: tuple[Any, ...]) -> Callable[[Any, Any], str]:
    """Values from the narrowest to the widest."""

    def direction(before: Any, after: Any) -> str:
        if before in order and after in order:
            return "widened" if order.index(after) > order.index(before) else "narrowed"
        return "changed"

    return direction


NOTES = {
    f"{P}:zeroTrust.probeImage": "the probes run with each source workload's labels, so with its network identity, in its namespace",
    f"{P}:zeroTrust.verify": "whether pulumi up proves the policies with probes",
    f"{P}:zeroTrust.enforcement": "staged: default deny off, nothing dropped, in every namespace without its own setting",
    f"{P}:cluster.kubernetesVersion": "it decides the Cilium version whose semantics the plan applies",
    f"{P}:cluster.advancedNetworking.security": "it decides which policy features AKS accepts",
    "azure-native:subscriptionId": "the subscription every Azure resource is deployed to",
}

NAMESPACE_ENFORCEMENT = "staged: the namespace's policies with default deny off, so nothing is dropped there"

DIRECTIONS: tuple[tuple[str, Callable[[Any, Any], str]], ...] = (
    (f"{P}:zeroTrust.verify", _off_widens),
    (f"{P}:zeroTrust.defaultDeny", _ordered(("ingress-and-egress", "ingress"))),
    (f"{P}:zeroTrust.allowDns", _on_widens),
    (f"{P}:zeroTrust.enforcement", _ordered(("enforced", "staged"))),
    (f"{P}:namespaces.*.enforcement", _ordered(("enforced", "staged"))),
    (f"{P}:cluster.disableLocalAccounts", _off_widens),
    (f"{P}:cluster.privateCluster", _off_widens),
    (f"{P}:cluster.authorizedIpRanges", _ranges),
    (f"{P}:cluster.entraId", lambda b, a: "widened" if a is None else "narrowed" if b is None else "changed"),
    (f"{P}:cluster.entraId.azureRbac", _off_widens),
    (f"{P}:cluster.azurePolicy", _off_widens),
    (f"{P}:cluster.defender", _off_widens),
    (f"{P}:cluster.imageCleaner.enabled", _off_widens),
    (f"{P}:cluster.disableRunCommand", _off_widens),
    (f"{P}:cluster.autoUpgrade.upgradeChannel", lambda b, a: "widened" if a == "none" else "narrowed" if b == "none" else "changed"),
    (f"{P}:cluster.autoUpgrade.nodeOsUpgradeChannel", _ordered(("SecurityPatch", "NodeImage", "Unmanaged", "None"))),
    (f"{P}:cluster.localDns", _ordered(("disabled", "preferred", "required"))),
    (f"{P}:workloads.*.serviceAccountToken", _on_widens),
    (f"{P}:workloads.*.expose", _ordered(("none", "loadBalancer"))),
    (f"{P}:workloads.*.securityProfile", _ordered(("restricted", "baseline"))),
    (f"{P}:peers.*.cidrs", _peer_ranges),
    (f"{P}:peers.*.except", _excepts),
)


def _direction(path: str, before: Any, after: Any) -> str:
    for pattern, direction in DIRECTIONS:
        head, _, tail = pattern.partition(".*.")
        if path == pattern or (tail and path.startswith(head + ".") and path.endswith("." + tail) and path.count(".") == pattern.count(".")):
            return direction(before, after)
    return "changed"


# -- the comparisons -------------------------------------------------------------------------------------------


def _config_values(s: StackSettings) -> dict[str, Any]:
    """Every effective project setting (defaults included) and every provider key as written."""
    dumped = s.config.model_dump(by_alias=True, mode="json")
    out = dict(kv for key, value in dumped.items() for kv in _leaves(value, key))
    # Each managed namespace's effective enforcement, whether set on it or inherited from zeroTrust.enforcement.
    out |= {f"{P}:namespaces.{ns}.enforcement": s.config.enforcement(ns) for ns in s.config.namespaces}
    for key, value in s.raw.items():
        if not str(key).startswith(f"{P}:"):
            out[str(key)] = value
    for key, ciphertext in s.ciphertexts.items():
        out[key] = _Secret(ciphertext)
    return out


@dataclass(frozen=True)
class _Secret:
    """A secret value: equal when its ciphertext is, shown as ``[secret]``."""

    ciphertext: str


def _config_changes(base: StackSettings, head: StackSettings) -> list[SettingChange]:
    old, new = _config_values(base), _config_values(head)
    out = []
    for path in sorted(set(old) | set(new)):
        if path.startswith(f"{P}:flows"):
            continue  # flows are the matrix and the rule diff
        b, a = old.get(path, _MISSING), new.get(path, _MISSING)
        if b == a:
            continue
        provider = not path.startswith(f"{P}:")
        if b is _MISSING or a is _MISSING:
            change = ("added" if b is _MISSING else "removed") if provider else "changed"
        else:
            change = _direction(path, b, a)
        note = NOTES.get(path) or (NAMESPACE_ENFORCEMENT if path.startswith(f"{P}:namespaces.") and path.endswith(".enforcement") else "")
        out.append(SettingChange(path, change, "" if b is _MISSING else _show(b), "" if a is _MISSING else _show(a), note))
    return out


_MISSING = object()
RANK = {"disabled": 0, "advisory": 1, "mandatory": 2}


def _level_changes(base: StackSettings, head: StackSettings) -> list[SettingChange]:
    out = []
    where = head.levels_file
    for rule in sorted(set(base.levels.levels) | set(head.levels.levels)):
        b, a = base.levels.levels.get(rule, ""), head.levels.levels.get(rule, "")
        if b != a:
            change = "widened" if RANK.get(a, 0) < RANK.get(b, 0) else "narrowed"
            out.append(SettingChange(f"{where}: {rule}.enforcementLevel", change, b, a))
        bx, ax = rule not in base.levels.unexceptable, rule not in head.levels.unexceptable
        if bx != ax:
            out.append(SettingChange(f"{where}: {rule}.exceptable", "widened" if ax else "narrowed", _show(bx), _show(ax)))
        bs, hs = base.levels.settings.get(rule, {}), head.levels.settings.get(rule, {})
        if bs != hs:
            before, after = limits(bs), limits(hs)
            for version in sorted(before):
                if before[version] != after[version]:
                    change = "widened" if after[version][1] > before[version][1] else "narrowed"
                    out.append(SettingChange(f"{where}: {rule}.publicIpv{version}Limit", change, before[version][0], after[version][0]))
    return out


def _exception_changes(base: StackSettings, head: StackSettings) -> list[SettingChange]:
    def mine(s: StackSettings) -> dict[tuple[str, str], RuleException]:
        return {(e.rule, e.resource): e for e in s.exceptions if not e.stacks or s.stack in e.stacks}

    old, new = mine(base), mine(head)
    out = []
    for key in sorted(set(old) | set(new)):
        b, a = old.get(key), new.get(key)
        path = f"guardrails/exceptions.yaml: {key[0]} for {key[1]}"
        if b is None or a is None:
            e = a or b
            text = f"{e.reason} (owner {e.owner}, until {e.expires.isoformat()})"
            out.append(SettingChange(path, "widened" if b is None else "narrowed", "" if b is None else text, "" if a is None else text))
        elif (b.expires, b.reason, b.owner) != (a.expires, a.reason, a.owner):
            change = "widened" if a.expires > b.expires else "narrowed" if a.expires < b.expires else "changed"
            out.append(SettingChange(path, change, f"{b.owner} until {b.expires.isoformat()}: {b.reason}", f"{a.owner} until {a.expires.isoformat()}: {a.reason}"))
    return out


def setting_changes(base: StackSettings, head: StackSettings) -> list[SettingChange]:
    """Every setting, level, limit and exception of the stack that differs between the base and the head."""
    return _config_changes(base, head) + _level_changes(base, head) + _exception_changes(base, head)


__all__ = ["SettingChange", "StackSettings", "setting_changes"]

"""Guardrails: the rules every stack must keep, as pure functions over plain resources.

A resource here is what Pulumi's policy engine sees: a type token and its
inputs with camelCase keys (``azure-native:containerservice:ManagedCluster``
with ``networkProfile.networkDataplane``; ``kubernetes:cilium.io/v2:
CiliumNetworkPolicy`` with ``metadata``/``spec``). The same rules run

- in the CrossGuard pack (``guardrails/``) under ``pulumi preview``/``up``, and
- in ``python -m zerotrust plan`` over the mock engine's registrations,

so a reviewer without Azure sees the verdicts CI will enforce. Rules hold
for any program, including hand-written policies: nothing here relies on
the names ``render`` gives its objects.

Each violation is one line naming the resource and the fix. A Kubernetes
object may opt out of an *exceptable* rule with the annotation
``zero-trust-aks/exception: "<reason>"``; the reason is shown wherever the
exception is used, and an annotation without a reason does not count.

Enforcement levels follow CrossGuard's policy-pack config format
(``{"all": {"enforcementLevel": ...}, "<rule>": {"enforcementLevel": ...}}``),
read by ``resolve_levels``; ``guardrails/config/<stack>.json`` holds each
stack's.

The package, by subject:

- ``resources``: resources as the policy engine sees them, violations, the rule record;
- ``aks``: the cluster (dataplane, Entra ID, API server access);
- ``cilium``: the policies (default deny via the verdict engine, broad peers, ACNS and version fields);
- ``workloads``: the pods (non-root, no escalation, limits, tokens);
- ``rules``: the table of rules;
- ``run``: evaluating them, exceptions, enforcement levels.
"""

from policies.guardrails.resources import (
    EXCEPTION_ANNOTATION,
    LEVELS,
    MANAGED_CLUSTER,
    Excepted,
    Resource,
    Rule,
    Violation,
)
from policies.guardrails.rules import BY_NAME, RULES
from policies.guardrails.run import (
    LevelConfigError,
    Report,
    check_resource,
    check_stack,
    default_levels,
    evaluate,
    resolve_levels,
)

__all__ = [
    "BY_NAME",
    "EXCEPTION_ANNOTATION",
    "LEVELS",
    "MANAGED_CLUSTER",
    "RULES",
    "Excepted",
    "LevelConfigError",
    "Report",
    "Resource",
    "Rule",
    "Violation",
    "check_resource",
    "check_stack",
    "default_levels",
    "evaluate",
    "resolve_levels",
]

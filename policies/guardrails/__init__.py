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

Each violation is one line naming the resource and the fix. An *exceptable*
rule may be waived for one resource by a reviewed entry of
``guardrails/exceptions.yaml`` (rule, resource, reason, owner, expiry date;
``exceptions``); nothing in a stack's own files can waive a rule.

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
    LEVELS,
    MANAGED_CLUSTER,
    Excepted,
    Resource,
    Rule,
    Violation,
)
from policies.guardrails.exceptions import ExceptionsFileError, RuleException, parse_exceptions
from policies.guardrails.rules import BY_NAME, RULES
from policies.guardrails.run import (
    EXCEPTIONS_FILE,
    LevelConfigError,
    Waivers,
    Report,
    check_resource,
    check_stack,
    default_levels,
    evaluate,
    StackLevels,
    resolve_levels,
    rule_settings,
    stack_levels,
    unexceptable,
)

__all__ = [
    "BY_NAME",
    "EXCEPTIONS_FILE",
    "LEVELS",
    "MANAGED_CLUSTER",
    "RULES",
    "Excepted",
    "ExceptionsFileError",
    "RuleException",
    "Waivers",
    "parse_exceptions",
    "unexceptable",
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
    "rule_settings",
    "stack_levels",
    "StackLevels",
]

"""What a change to a stack does, for a reviewer: every widening, narrowing or change.

- ``rules``: the rendered policies compared grant by grant (HTTP paths, outside names,
  address ranges, entities, ports), which the connectivity matrix cannot see;
- ``settings``: every setting that changes what runs or what is proven and renders no
  policy: the probe image, ``verify``, provider keys, cluster settings, the guardrail levels
  and limits, and the exceptions.
"""

from policies.analysis.review.rules import FLOWS_ANNOTATION, RuleChange, grants, rule_changes
from policies.analysis.review.settings import SettingChange, StackSettings, setting_changes

__all__ = ["FLOWS_ANNOTATION", "RuleChange", "SettingChange", "StackSettings", "grants", "rule_changes", "setting_changes"]

"""The CrossGuard entry point: ``pulumi preview --policy-pack guardrails``.

Only builds the pack (``PolicyPack`` serves the engine until it is stopped):
the policies are in ``guardrails/pack.py`` and the rules in ``policies/``.
"""

import sys
from pathlib import Path

# The rules live in the project beside this pack; make them importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from guardrails.pack import PACK_NAME, policies  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())

"""Connectivity probes: the live-cluster proof of what the policies enforce.

- ``checks``: which checks, what each must observe, which side it proves, grouped into Jobs;
- ``prober``: the ingress prober's namespace and policies (a prober whose only obstacle is the
  target's ingress);
- ``outcomes``: what curl's exit codes mean, the probe's shell program, its result lines;
- ``job``: the Kubernetes Job of one group.
"""

from policies.analysis.probes.checks import Dependencies, Probe, ProbeGroup, ProbeSet, group, job_stem, probes
from policies.analysis.probes.job import checks_env, job
from policies.analysis.probes.outcomes import (
    ATTEMPTS,
    CONNECT_TIMEOUT,
    DEADLINE,
    EXPECTED_OBSERVATION,
    INTERVAL,
    MAX_TIME,
    OUTCOMES,
    PROBE_ANNOTATION,
    PROBE_LABEL,
    PROBE_UID,
    agrees,
    outcome,
    parse_results,
    probe_script,
)
from policies.analysis.probes.prober import PROBER, PROBER_LABELS, prober_namespace, prober_targets

__all__ = [
    "ATTEMPTS", "CONNECT_TIMEOUT", "DEADLINE", "EXPECTED_OBSERVATION", "INTERVAL", "MAX_TIME", "OUTCOMES",
    "PROBER", "PROBER_LABELS", "PROBE_ANNOTATION", "PROBE_LABEL", "PROBE_UID",
    "Dependencies", "Probe", "ProbeGroup", "ProbeSet",
    "agrees", "checks_env", "group", "job", "job_stem", "outcome", "parse_results", "probe_script", "probes",
    "prober_namespace", "prober_targets",
]

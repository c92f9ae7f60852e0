"""How large a stack may be: beyond these, plans and `pulumi up` stop being bounded in time.

The plan runs the program under the mock engine (a few ms per resource) and
judges every (source, target) cell of the connectivity matrix; both grow with
workloads times workloads. The limits are where that stays within minutes on
a 2-core machine (see docs/benchmarks.md); a larger estate is split into
stacks (one per team or namespace group).
"""

MAX_WORKLOADS = 2000
MAX_FLOWS = 10000
MAX_NODES = 1000  # an AKS node pool's maximum
MAX_REPLICAS = 1000
MAX_LABELS_PER_WORKLOAD = 32
MAX_FQDNS_PER_FLOW = 64
MAX_HTTP_RULES_PER_FLOW = 64
MAX_ENV = 128
MAX_ARGS = 128
MAX_CONFIG_NODES = 200_000
"""Values (mappings, lists and scalars) in one stack's config, counted before anything is validated."""
MAX_CONFIG_DEPTH = 32

"""The stack configuration: frozen models, validated in one pass with one line per problem.

The config keys are the project's public interface (docs/configuration.md).
Every problem becomes one line that names the full key path, e.g.::

    zero-trust-aks:flows[0].to: 'backnd' is not a workload; workloads are: backend, frontend

- ``models``: what each key accepts, field by field;
- ``rules``: cross-field rules (flows against workloads, the cluster's ranges...);
- ``azure`` / ``kubernetes`` / ``outside_names``: what ARM, the API server and
  Cilium/Envoy accept, as plain functions;
- ``limits``: how large a stack may be;
- ``errors``: the wording of every problem;
- ``load``: ``load_config``, which runs all of it.
"""

from policies.config.errors import ConfigErrors, format_path
from policies.config.load import load_config
from policies.config.models import (
    PEER_ENTITIES,
    PROBE_IMAGE,
    PROJECT,
    AdvancedNetworking,
    ClusterConfig,
    EntraId,
    ExistingCluster,
    Flow,
    HttpRule,
    PeerConfig,
    PortSpec,
    Resources,
    StackConfig,
    WorkloadConfig,
    ZeroTrust,
)

__all__ = [
    "PEER_ENTITIES",
    "PROBE_IMAGE",
    "PROJECT",
    "AdvancedNetworking",
    "ClusterConfig",
    "ConfigErrors",
    "EntraId",
    "ExistingCluster",
    "Flow",
    "HttpRule",
    "PeerConfig",
    "PortSpec",
    "Resources",
    "StackConfig",
    "WorkloadConfig",
    "ZeroTrust",
    "format_path",
    "load_config",
]

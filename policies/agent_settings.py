"""The Cilium agent settings that policy verdicts depend on besides the version: one table.

AKS writes ``cilium-config`` itself and lets users change only label exclusions, so these are facts of
the platform, read by the verdict engine and the replay alike:

- the host firewall (``enable-host-firewall``): host policies (a CCNP ``nodeSelector``) are enforced
  only with it. AKS does not enable it: cilium-cli's feature detection on AKS reports
  ``host-firewall: Disabled`` (cilium/cilium-cli#2105), and the AKS pages list no host policies.
- ``enable-node-selector-labels``: node identities carry their node's labels (``node:`` source) only
  with it, and Cilium refuses ``fromNodes``/``toNodes`` rules without it (pkg/policy/api
  ``ErrFromToNodesRequiresNodeSelectorOption``). Cilium's default is off (pkg/defaults) and AKS does
  not set it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentSettings:
    host_firewall: bool
    """Host policies are enforced on the nodes' host endpoints."""
    node_selector_labels: bool
    """Node identities carry node labels, and fromNodes/toNodes rules are accepted."""


AKS = AgentSettings(host_firewall=False, node_selector_labels=False)
"""What every AKS cluster runs with."""

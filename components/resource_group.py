"""The Azure resource group that holds the cluster."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import resources


class ResourceGroup(pulumi.ComponentResource):
    """A resource group with a fixed name (the walkthrough's ``aks-zero-trust-rg``)."""

    name: pulumi.Output[str]

    def __init__(self, name: str, *, group_name: str, location: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("zero-trust-aks:azure:ResourceGroup", name, None, opts)
        self.group = resources.ResourceGroup(
            f"{name}-group",
            resource_group_name=group_name,
            location=location,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.group.name
        self.register_outputs({"name": self.name})

"""The Azure resource group that holds the cluster: created by the stack, or an existing one it only reads."""

from __future__ import annotations

import pulumi
from pulumi_azure_native import resources


class ResourceGroup(pulumi.ComponentResource):
    """A resource group with a fixed name (the walkthrough's ``aks-zero-trust-rg``).

    ``create=False`` (``zero-trust-aks:createResourceGroup: false``) reads an existing group
    instead: a deploy identity then needs rights on that group only, not on the subscription.
    """

    name: pulumi.Output[str]

    def __init__(
        self, name: str, *, group_name: str, location: str, create: bool = True, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("zero-trust-aks:azure:ResourceGroup", name, None, opts)
        if create:
            self.group = resources.ResourceGroup(
                f"{name}-group",
                resource_group_name=group_name,
                location=location,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.name = self.group.name
        else:
            found = resources.get_resource_group_output(
                resource_group_name=group_name, opts=pulumi.InvokeOptions(parent=self)
            )
            self.name = found.name
        self.register_outputs({"name": self.name})

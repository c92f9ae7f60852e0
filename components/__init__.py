"""Pulumi components: one ComponentResource per module.

Each wraps what ``policies`` returns (plain manifests and config models) in
Pulumi resources; none holds policy logic of its own. Every Kubernetes object
gets the cluster's provider explicitly, never the ambient kubeconfig.
"""

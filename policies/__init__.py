"""The pure core of zero-trust-aks.

Everything in this package takes and returns plain data (dicts, frozen models)
and never imports pulumi: the Pulumi program, the command-line tools and the
CrossGuard pack are thin adapters over it.

- ``config``: the stack configuration as frozen pydantic models, with one error
  line per problem naming the config key path.
- ``render``: config -> Kubernetes manifests (namespaces, workloads, Services,
  CiliumNetworkPolicies) as plain dicts.
- ``verdict``: a Cilium policy verdict engine (does this pod reach that pod?).
- ``matrix``: the connectivity matrix of a stack, declared versus enforced.
- ``guardrails``: the rules every stack must keep (run by the CrossGuard pack and by plan).
"""

"""What the project proves about a stack, from its config and rendered manifests:

- ``matrix``: declared versus enforced connectivity, every cell decided by the verdict engine;
- ``budget``: policy-map entries per endpoint against AKS's fixed limit;
- ``probes``: the live checks `pulumi up` and `verify` run, and which side each proves;
- ``review``: what a change widens, narrows or changes (rules and settings), for `plan --base`;
- ``drift``: the stack's policies as the cluster holds them, against the plan.
"""

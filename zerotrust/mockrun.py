"""Run the real Pulumi program under Pulumi's mock engine and record what it registers.

No Pulumi CLI, no Azure, no cluster: ``pulumi.runtime.set_mocks`` stands in for
the engine and the providers, the way ``pulumi-language-python-exec`` runs a
program (``run_in_stack`` of ``runpy.run_path(<project dir>)``). Each run is
isolated in a fresh ``contextvars`` context and event loop, so runs in one
process never share a root stack, config or outstanding outputs.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import resource as resource_runtime

from policies.config.stackfile import StackFiles

PROJECT_DIR = Path(__file__).resolve().parent.parent
_SECRET_SIG = rpc._special_sig_key  # the wire marker of a secret value
SECRET = "[secret]"


@dataclass(frozen=True)
class Registered:
    """One resource registration as the engine would see it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    provider: str
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    ignore_changes: tuple[str, ...] = ()

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


@dataclass
class Run:
    project: str
    stack: str
    resources: list[Registered] = field(default_factory=list)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, prefix: str) -> list[Registered]:
        return [r for r in self.resources if r.type.startswith(prefix)]

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """The Kubernetes objects as they would be applied (numbers as ints): new copies on every call."""
        return [ints(unwrap_secrets(r.inputs)) for r in self.resources if r.type.startswith("kubernetes:") and r.custom]


def unwrap_secrets(value: Any, mask: bool = False) -> Any:
    """Replace wire-form secrets by their value (or by ``[secret]`` when ``mask``)."""
    if isinstance(value, dict):
        if _SECRET_SIG in value and "value" in value:
            return SECRET if mask else unwrap_secrets(value["value"], mask)
        return {k: unwrap_secrets(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v, mask) for v in value]
    return value


def ints(value: Any) -> Any:
    """Protobuf Structs carry every number as a float; manifests want ints back."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value


def fake_kubeconfig(cluster: str, entra_id: bool) -> str:
    """What ``listClusterUserCredential`` returns, in AKS's own shapes."""
    if entra_id:
        user: dict[str, Any] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                "args": [
                    "get-token", "--environment", "AzurePublicCloud",
                    "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630",
                    "--client-id", "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
                    "--tenant-id", "00000000-0000-0000-0000-000000000000",
                    "--login", "devicecode",
                ],
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": False,
            }
        }
    else:
        user = {"token": "mock-token"}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}.hcp.westeurope.azmk8s.io:443"}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"clusterUser_{cluster}"}}],
        "current-context": cluster,
        "users": [{"name": f"clusterUser_{cluster}", "user": user}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


class _Mocks(pulumi.runtime.Mocks):
    """Echo inputs and fill in what a provider would (names, ids, credentials)."""

    def __init__(self, run: Run):
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        if args.typ == "azure-native:resources:ResourceGroup":
            state["name"] = args.inputs.get("resourceGroupName", args.name)
        elif args.typ == "azure-native:containerservice:ManagedCluster":
            state["name"] = args.inputs.get("resourceName", args.name)
            state["fqdn"] = f"{state['name']}.hcp.westeurope.azmk8s.io"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.run.invokes.append((args.token, dict(args.args)))
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":
            clusters = [r for r in self.run.of_type("azure-native:containerservice:ManagedCluster")]
            entra = any(unwrap_secrets(r.inputs).get("aadProfile") for r in clusters)
            text = fake_kubeconfig(args.args.get("resourceName") or "cluster", entra)
            return {"kubeconfigs": [{"name": "clusterUser", "value": base64.b64encode(text.encode()).decode()}]}
        if args.token == "azure-native:resources:getResourceGroup":
            name = args.args.get("resourceGroupName", "rg")
            return {"id": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{name}", "name": name, "location": "westeurope"}
        raise Exception(f"unmocked invoke {args.token}")


class _Recorder(mocks.MockMonitor):
    def __init__(self, m: _Mocks):
        super().__init__(m)
        self.run = m.run

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    provider=request.provider,
                    dependencies=tuple(request.dependencies),
                    inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                    ignore_changes=tuple(request.ignoreChanges),
                )
            )
        return response


class DuplicateRegistrations(Exception):
    """What the real engine (a URN twice) or the API server (one object owned twice) would refuse, one line each."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def duplicate_registrations(run: Run) -> list[str]:
    """Resources the mock engine accepted but the real one would not.

    - Two registrations with one URN: the engine fails with "Duplicate resource URN".
    - Two Kubernetes resources for one object (API group, kind, namespace, name): with
      server-side apply both would own it, and deleting either deletes it.
    """
    lines: list[str] = []
    seen: dict[str, Registered] = {}
    objects: dict[tuple, str] = {}
    for r in run.resources:
        if r.urn in seen:
            lines.append(f"duplicate resource URN {r.urn}: the Pulumi engine refuses a second resource with one name and type")
        seen.setdefault(r.urn, r)
        if r.custom and r.type.startswith("kubernetes:") and not r.type.startswith("kubernetes:helm"):
            o = unwrap_secrets(r.inputs)
            meta = o.get("metadata") or {}
            group = str(o.get("apiVersion", "")).rsplit("/", 1)[0] if "/" in str(o.get("apiVersion", "")) else ""
            key = (group, o.get("kind"), meta.get("namespace") or "", meta.get("name"))
            if key[3] and key in objects:
                where = f"{key[2]}/{key[3]}" if key[2] else key[3]
                lines.append(
                    f"{key[1]} {where} is declared by two resources ({objects[key]} and {r.name}); one object, one owner"
                )
            objects.setdefault(key, r.name)
    return lines


def config_map(stack: StackFiles) -> dict[str, str]:
    """Config as the engine passes it: strings, structured values JSON-encoded."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in stack.config.items()}


def run_program(stack: StackFiles, project_dir: Path = PROJECT_DIR, preview: bool = False) -> Run:
    """Run ``project_dir``'s ``__main__.py`` for ``stack`` under mocks; raise what the program raises."""
    return contextvars.Context().run(_run, stack, project_dir, preview)


def _no_stack_trace() -> Any:
    """The source positions the SDK sends the engine with each registration: the mock engine reads none, and
    collecting them walks and reads every frame's source for every resource."""
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _run(stack: StackFiles, project_dir: Path, preview: bool) -> Run:
    run = Run(project=stack.project, stack=stack.stack)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings.ROOT.set(None)
        settings.SETTINGS.outputs.clear()
        settings.SETTINGS.rpc_manager.clear()
        pulumi.runtime.set_all_config(config_map(stack), list(stack.secret_keys))
        m = _Mocks(run)
        pulumi.runtime.set_mocks(m, project=stack.project, stack=stack.stack, preview=preview, monitor=_Recorder(m))
        resource_runtime._get_stack_trace = _no_stack_trace  # the mock engine uses no source positions
        program = str(project_dir)
        loop.run_until_complete(
            pulumi.runtime.stack.run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__"))
        )
        root = settings.get_root_resource()
        for key, value in (root.outputs if root is not None else {}).items():
            out = pulumi.Output.from_input(value)
            run.outputs[key] = loop.run_until_complete(out.future())
            if loop.run_until_complete(out.is_secret()):
                run.secret_outputs.add(key)
        duplicates = duplicate_registrations(run)
        if duplicates:
            raise DuplicateRegistrations(duplicates)
        return run
    finally:
        asyncio.set_event_loop(None)
        loop.close()

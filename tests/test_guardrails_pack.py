"""The CrossGuard pack (guardrails/): well formed, and its callbacks report what the core finds.

No Pulumi CLI here: the callbacks are called with pulumi-policy's own argument
types, and once through pulumi-policy's analyzer servicer (the code the CLI
talks to over gRPC), with a request built the way the engine builds it.
The pack's ``__main__.py`` is never imported: ``PolicyPack`` serves forever.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime import proto
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import policy as pp

from guardrails.pack import PACK_NAME, policies
from policies import guardrails as g
from tests.conftest import stack_run
from zerotrust.mockrun import PROJECT_DIR
from zerotrust.plan import policy_resources

PACK_DIR = PROJECT_DIR / "guardrails"


def opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def by_name() -> dict[str, ResourceValidationPolicy | StackValidationPolicy]:
    return {p.name: p for p in policies()}


def dev_cluster() -> g.Resource:
    (c,) = [r for r in copy.deepcopy(policy_resources(stack_run("dev"))) if r.type == g.MANAGED_CLUSTER]
    return c


# -- the pack's shape ------------------------------------------------------------------------------


def test_the_pack_file_says_python_and_describes_the_pack():
    doc = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python" and doc["runtime"]["options"]["virtualenv"] == "venv"
    assert len(doc["description"]) > 20
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(doc["version"]))  # the CLI takes the pack's version from here


def test_the_pack_name_and_policy_names_are_well_formed_and_unique():
    assert pp._POLICY_PACK_NAME_RE.match(PACK_NAME)
    names = [p.name for p in policies()]
    assert len(names) == len(set(names)) and "all" not in names
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) and len(n) <= 100 for n in names)


def test_every_core_rule_is_one_policy_of_the_right_kind_and_default_level():
    policies_ = by_name()
    assert list(policies_) == [r.name for r in g.RULES]
    for rule in g.RULES:
        p = policies_[rule.name]
        assert isinstance(p, ResourceValidationPolicy if rule.scope == "resource" else StackValidationPolicy), rule.name
        assert p.enforcement_level.value == rule.level, rule.name
        assert rule.description in p.description


def test_the_entry_point_only_builds_the_pack_from_the_adapter():
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PolicyPack"]
    (call,) = calls
    kwargs = {k.arg: ast.unparse(k.value) for k in call.keywords}
    assert kwargs == {"name": "PACK_NAME", "enforcement_level": "EnforcementLevel.MANDATORY", "policies": "policies()"}
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def test_the_packs_requirements_pin_what_the_project_pins():
    from tests.test_locks import pins

    project = pins(PROJECT_DIR / "requirements-dev.txt")
    pack = pins(PACK_DIR / "requirements.txt")
    assert {"pulumi-policy", "pydantic", "pyyaml"} <= set(pack)
    assert {k: project.get(k) for k in pack} == pack


# -- the callbacks ----------------------------------------------------------------------------------


def test_a_resource_policy_reports_the_cores_message_for_a_non_cilium_cluster():
    c = dev_cluster()
    c.props["networkProfile"]["networkPolicy"] = "azure"
    args = ResourceValidationArgs(c.type, c.props, c.urn, c.name, opts(), None)
    reported: list[tuple[str, str | None]] = []
    by_name()["aks-cilium-dataplane"].validate(args, lambda msg, urn=None: reported.append((msg, urn)))
    assert reported == [(g.check_resource(g.BY_NAME["aks-cilium-dataplane"], c)[0].message, None)]
    assert "networkProfile.networkPolicy is 'azure'" in reported[0][0]


def dev_deployment(name: str) -> g.Resource:
    (d,) = [r for r in policy_resources(stack_run("dev")) if r.type == "kubernetes:apps/v1:Deployment" and r.name == f"{name}-deployment"]
    return d


def test_a_reviewed_exception_beside_the_pack_waives_its_rule_for_its_resource_on_its_stack():
    d = dev_deployment("backend")
    reported: list[str] = []
    args = ResourceValidationArgs(d.type, d.props, d.urn, d.name, opts(), None, {})
    by_name()["workload-non-root"].validate(args, lambda msg, urn=None: reported.append(msg))
    assert reported == []  # guardrails/exceptions.yaml waives it on dev
    prod_urn = d.urn.replace("urn:pulumi:dev::", "urn:pulumi:prod::")
    by_name()["workload-non-root"].validate(ResourceValidationArgs(d.type, d.props, prod_urn, d.name, opts(), None, {}), lambda msg, urn=None: reported.append(msg))
    assert len(reported) == 1 and "may run as root" in reported[0]


def test_a_stack_level_file_that_refuses_exceptions_reaches_the_policy_through_its_config():
    d = dev_deployment("backend")
    reported: list[str] = []
    args = ResourceValidationArgs(d.type, d.props, d.urn, d.name, opts(), None, {"exceptable": False})
    by_name()["workload-non-root"].validate(args, lambda msg, urn=None: reported.append(msg))
    assert len(reported) == 1 and "this stack accepts none for workload-non-root" in reported[0]
    assert by_name()["workload-non-root"].config_schema.properties == {"exceptable": {"type": "boolean"}}


def test_a_resource_policy_ignores_resources_of_other_types():
    rs = policy_resources(stack_run("dev"))
    reported: list[str] = []
    for r in rs:
        args = ResourceValidationArgs(r.type, r.props, r.urn, r.name, opts(), None)
        by_name()["no-l7-in-ccnp"].validate(args, lambda msg, urn=None: reported.append(msg))
    assert reported == []


def test_a_stack_policy_reports_the_walkthroughs_empty_ingress_against_the_namespace():
    rs = [r for r in copy.deepcopy(policy_resources(stack_run("dev"))) if not r.name.endswith("zt-default-deny")]
    for r in rs:
        if r.type == g.MANAGED_CLUSTER:
            r.props["kubernetesVersion"] = "1.30"
    walkthrough = {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "backend"},
        "spec": {"endpointSelector": {}, "ingress": []},
    }
    resources = [PolicyResource(r.type, r.props, r.urn, r.name, opts(), None, None, [], {}) for r in rs]
    resources.append(PolicyResource("kubernetes:cilium.io/v2:CiliumNetworkPolicy", walkthrough, "urn:x", "wt", opts(), None, None, [], {}))
    reported: list[tuple[str, str | None]] = []
    by_name()["namespace-default-deny"].validate(StackValidationArgs(resources), lambda msg, urn=None: reported.append((msg, urn)))
    (ns_urn,) = [r.urn for r in rs if r.type == "kubernetes:core/v1:Namespace" and r.props["metadata"]["name"] == "backend"]
    backend = [(m, u) for m, u in reported if m.startswith("Namespace backend: ingress")]
    assert len(backend) == 1 and backend[0][1] == ns_urn
    assert "backend/default-deny has `ingress: []`, which enforces nothing" in backend[0][0]


def test_secret_props_are_unwrapped_before_the_rules_see_them():
    from pulumi_policy.secret import Secret

    c = dev_cluster()
    c.props["networkProfile"] = Secret({**c.props["networkProfile"], "networkDataplane": "azure"})
    args = ResourceValidationArgs(c.type, c.props, c.urn, c.name, opts(), None)
    reported: list[str] = []
    by_name()["aks-cilium-dataplane"].validate(args, lambda msg, urn=None: reported.append(msg))
    assert len(reported) == 1 and "networkDataplane is 'azure'" in reported[0]


# -- through pulumi-policy's analyzer (what the CLI calls) ------------------------------------------------------


def servicer(config: dict | None = None):
    s = pp._PolicyAnalyzerServicer(PACK_NAME, "0.0.1", policies(), pp.EnforcementLevel.MANDATORY)
    if config is not None:
        request = proto.ConfigureAnalyzerRequest()
        for name, value in config.items():
            level = value["enforcementLevel"] if isinstance(value, dict) else value
            request.policyConfig[name].enforcementLevel = getattr(proto, level.upper())
            if isinstance(value, dict):
                request.policyConfig[name].properties.update({k: v for k, v in value.items() if k != "enforcementLevel"})
        s.Configure(request, None)
    return s


def analyze(s, r: g.Resource):
    props = struct_pb2.Struct()
    props.update(json.loads(json.dumps(r.props)))
    return s.Analyze(proto.AnalyzeRequest(type=r.type, properties=props, urn=r.urn, name=r.name), None).diagnostics


def test_the_analyzer_reports_a_mandatory_violation_by_policy_name():
    c = dev_cluster()
    c.props["networkProfile"]["networkDataplane"] = "azure"
    diagnostics = analyze(servicer(), c)
    names = {(d.policyName, d.enforcementLevel) for d in diagnostics}
    assert ("aks-cilium-dataplane", proto.MANDATORY) in names
    assert any("networkDataplane is 'azure'" in d.message for d in diagnostics if d.policyName == "aks-cilium-dataplane")


@pytest.mark.parametrize("stack, reported", [("dev", {"aks-production-hardening"}), ("prod", {"aks-production-hardening", "aks-api-server-restricted"})])
def test_the_stacks_level_files_decide_whether_the_production_rules_run(stack, reported):
    config = json.loads((PACK_DIR / "config" / f"{stack}.json").read_text())
    diagnostics = analyze(servicer(config), dev_cluster())  # a cluster without Defender and with an open API server
    assert {d.policyName for d in diagnostics} == reported


def test_a_breadth_limit_in_the_stacks_level_file_reaches_the_rule_through_the_analyzer():
    c = dev_cluster()
    c.props["apiServerAccessProfile"] = {"authorizedIPRanges": ["20.0.0.0/9"]}
    strict = analyze(servicer({"aks-api-server-restricted": {"enforcementLevel": "mandatory"}}), c)
    assert any("more than the /16 this stack allows" in d.message for d in strict if d.policyName == "aks-api-server-restricted")
    wide = analyze(servicer({"aks-api-server-restricted": {"enforcementLevel": "mandatory", "publicIpv4Limit": "/8"}}), c)
    assert not [d for d in wide if d.policyName == "aks-api-server-restricted"]


def test_the_breadth_rules_declare_their_limits_with_defaults_in_the_config_schema():
    schema = by_name()["no-broad-peers"].config_schema.properties
    assert schema["publicIpv4Limit"]["default"] == "/16" and schema["publicIpv6Limit"]["default"] == "/48"
    assert schema["exceptable"] == {"type": "boolean"}


def test_the_pack_entry_point_serves_its_policies_over_grpc_as_the_cli_would_start_it():
    """Start ``guardrails/__main__.py`` from the pack's directory, read its port, ask it over gRPC."""
    import grpc
    from google.protobuf import empty_pb2

    proc = subprocess.Popen([sys.executable, "__main__.py"], cwd=PACK_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline().strip() or 0)
        assert port, proc.stderr.read().decode() if proc.poll() is not None else "no port printed"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = proto.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
            assert info.name == PACK_NAME
            assert [p.name for p in info.policies] == [r.name for r in g.RULES]
            c = dev_cluster()
            c.props["networkProfile"]["networkDataplane"] = "azure"
            props = struct_pb2.Struct()
            props.update(json.loads(json.dumps(c.props)))
            reply = stub.Analyze(proto.AnalyzeRequest(type=c.type, properties=props, urn=c.urn, name=c.name), timeout=10)
            assert {d.policyName for d in reply.diagnostics} >= {"aks-cilium-dataplane"}
    finally:
        proc.kill()
        proc.wait(timeout=10)

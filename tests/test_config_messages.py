"""Config problems in plain words: every problem at once, hints that are right, no library internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import errors_of
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

DOZEN = """\
config:
  azure-native:location: westeurope
  zero-trust-aks:resourceGroupName: rg
  zero-trust-aks:cluster:
    name: dozen
    nodeCount: 3
    nodeCount: 4
    kubernetesVersion: 1.30
  zero-trust-aks:workloads:
    web:
      namespace: Web
      image: nginx:1.27
      port: 8080
    api:
      namespace: shop
      image: ghcr.io/example/api:1
      selector: {app: api}
      port: 8080
    cache:
      namespace: shop
      image: redis:7.4
      port: 70000
    orders:
      namespace: shop
      image: ghcr.io/example/orders:1
      port: 5432
      env:
        PGPORT: 5432
    email:
      namespace: shop
      image: ghcr.io/example/email:1
      ports: [{name: grpc, port: 5000, targetPort: 8080}]
  zero-trust-aks:peers:
    nowhere: {}
  zero-trust-aks:flow: []
  zero-trust-aks:zeroTrust:
    defaultDeny: all
  zero-trust-aks:flows:
    - {from: email, to: email, protocol: TCPX}
    - {from: email, to: backnd}
    - {from: email, toFqdns: ["*.com"], port: 443}
    - {from: email, to: email, port: "5000"}
    - {from: email, to: email, protocol: SCTP}
    - {from: email, to: email, port: 8080}
zero-trust-aks:extra: []
"""

EXPECTED = [
    "Pulumi.dozen.yaml line 7: the key 'nodeCount' is defined twice (first on line 6); the second would silently replace the first",
    "Pulumi.dozen.yaml: 'zero-trust-aks:extra' is at the top level, outside config:, where Pulumi ignores it; indent it under config:",
    "zero-trust-aks:flow: unknown config key; did you mean zero-trust-aks:flows?",
    'zero-trust-aks:cluster.kubernetesVersion: must be a string, not a number 1.3 (YAML reads an unquoted 1.30 as the number 1.3; quote it: "1.30")',
    "zero-trust-aks:workloads.web.namespace: 'Web' is not a DNS label",
    "zero-trust-aks:workloads.cache.port: 70000 is too large; at most 65535",
    "zero-trust-aks:workloads.orders.env.PGPORT: 5432: must be a string",
    "zero-trust-aks:flows[0].protocol: 'TCPX' is not allowed; allowed: 'TCP', 'UDP' or 'SCTP'",
    "zero-trust-aks:flows[2].toFqdns[0]: '*.com' would match every name under the top-level domain 'com'",
    "zero-trust-aks:flows[3].port: '5000' is a number in quotes: write the port without quotes (5000)",
    "zero-trust-aks:zeroTrust.defaultDeny: 'all' is not allowed; allowed: 'ingress-and-egress' or 'ingress'",
    "zero-trust-aks:workloads.api: give image (a workload this stack deploys) or selector",
    "zero-trust-aks:peers.nowhere: give exactly one of namespace",
    "zero-trust-aks:flows[1].to: 'backnd' is neither a workload nor a peer",
    "zero-trust-aks:flows[4].protocol: 'email' serves grpc (5000/TCP) only",
    "zero-trust-aks:flows[5].port: 8080 is where 'email''s pods listen (the targetPort of 'grpc'); a flow names the port clients dial (5000)",
]


def plan_errors(tmp_path: Path, text: str, capsys) -> list[str]:
    path = tmp_path / "Pulumi.dozen.yaml"
    path.write_text(text)
    assert main(["plan", "--stack", "dozen", "--stack-file", str(path)]) == 2
    return [line.removeprefix("error: ") for line in capsys.readouterr().err.splitlines()]


def test_a_dozen_different_mistakes_in_one_file_are_all_reported_in_one_run(tmp_path, capsys):
    lines = plan_errors(tmp_path, DOZEN, capsys)
    assert len(lines) == len(EXPECTED), lines
    for want, got in zip(EXPECTED, lines):
        assert got.startswith(want), (want, got)


INTERNALS = re.compile(r"constrained-|function-(after|before|plain|wrap)|\[key\]|lax-or-strict|json-or-python|union\[|literal\[|type=|pydantic|Value error|\^.*\$")


def test_no_message_carries_library_internals_or_a_raw_regular_expression(tmp_path, capsys):
    lines = plan_errors(tmp_path, DOZEN, capsys)
    assert [line for line in lines if INTERNALS.search(line)] == []


def test_a_field_error_in_one_flow_hides_no_problem_of_another(dev_config):
    dev_config["zero-trust-aks:flows"] = [
        {"from": "frontend", "to": "backend", "protocol": "TCPX"},
        {"from": "frontend", "to": "nowhere", "port": 80},
        {"from": "frontend", "to": "backend", "port": 9999},
    ]
    assert [line.split(": ")[0] for line in errors_of(dev_config)] == [
        "zero-trust-aks:flows[0].protocol", "zero-trust-aks:flows[1].to", "zero-trust-aks:flows[2].port",
    ]


def test_a_flow_whose_protocol_the_target_does_not_serve_is_refused_even_without_a_port(dev_config):
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend", "protocol": "SCTP"}]
    assert errors_of(dev_config) == ["zero-trust-aks:flows[0].protocol: 'backend' serves serve (80/TCP) only"]


def test_a_flow_naming_a_port_by_another_protocol_says_which_protocol_it_is_served_over(dev_config):
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend", "port": 80, "protocol": "UDP"}]
    assert errors_of(dev_config) == ["zero-trust-aks:flows[0].protocol: 'backend' serves 80 over TCP only"]


def test_a_flow_naming_the_container_port_is_told_the_port_clients_dial(dev_config):
    dev_config["zero-trust-aks:workloads"]["backend"]["targetPort"] = 8080
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "to": "backend", "port": 8080}]
    assert errors_of(dev_config) == [
        "zero-trust-aks:flows[0].port: 8080 is where 'backend''s pods listen (the targetPort of 'serve'); "
        "a flow names the port clients dial (80) or its name ('serve')"
    ]


@pytest.mark.parametrize(
    "name, words",
    [
        ("*.com", "'*.com' would match every name under the top-level domain 'com'"),
        ("*.co.uk", "would match every tenant's host under the shared suffix 'co.uk'"),
        ("api..example.com", "'api..example.com' has an empty label (two dots in a row, or a dot at the start)"),
        ("a*.example.com", "'a*.example.com': a wildcard is a whole first label only ('*.example.com')"),
        ("localhost", "'localhost' is a single label; give the full name (api.example.com)"),
        ("203.0.113.7", "'203.0.113.7' ends in '7', which is no top-level domain (an address? use a peer with cidrs)"),
        ("x_y.example.com", "the label 'x_y' may hold only letters, digits and inner hyphens"),
    ],
)
def test_an_outside_name_that_cilium_would_refuse_or_that_is_too_wide_is_explained_in_words(dev_config, name, words):
    dev_config["zero-trust-aks:cluster"]["advancedNetworking"] = {"security": "fqdn"}
    dev_config["zero-trust-aks:flows"] = [{"from": "frontend", "toFqdns": [name], "port": 443}]
    (line,) = errors_of(dev_config)
    assert line.startswith("zero-trust-aks:flows[0].toFqdns[0]: ") and words in line


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("namespace", "Front_End", "'Front_End' is not a DNS label (1-63 lower-case letters, digits or '-', starting and ending with a letter or digit)"),
        ("port", "80", "must be a whole number, not a string '80' (write it without quotes: 80)"),
        ("serviceAccountName", "Front End", "'Front End' is not a DNS subdomain"),
        ("labels", {"tier": "front end"}, "'front end' is not a label value"),
    ],
)
def test_a_value_of_the_wrong_form_is_told_in_words(dev_config, key, value, words):
    dev_config["zero-trust-aks:workloads"]["frontend"][key] = value
    (line,) = errors_of(dev_config)
    assert words in line and not INTERNALS.search(line), line


def test_a_key_indented_one_level_too_little_is_told_so_not_sent_elsewhere(tmp_path, capsys):
    text = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()
    backend = text.rindex("      port: 80\n")  # the backend workload's port...
    text = text[:backend] + text[backend + len("      port: 80\n"):]
    text = text.replace("  zero-trust-aks:flows:", "    port: 80\n  zero-trust-aks:flows:")  # ...written one level too far out
    lines = plan_errors(tmp_path, text, capsys)
    assert any(
        line.startswith("zero-trust-aks:workloads.port: must be a mapping (a workload's settings), not int; 'port' is a key of a workload: "
                        "is it indented too little")
        for line in lines
    ), lines

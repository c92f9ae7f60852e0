"""Property: any mutation of a stack file is either a valid config that renders valid objects,
or a clean list of one-line problems naming key paths. Never a traceback, never a hang."""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.config import ConfigErrors, load_config
from policies.render import render
from policies.config.stackfile import StackFileError, read_stack
from tests.test_config_messages import INTERNALS
from tests.conftest import schema_errors
from zerotrust.mockrun import PROJECT_DIR

BASE = read_stack(PROJECT_DIR, "dev").config
PREFIXES = ("zero-trust-aks:", "azure-native:", "config:")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789._/*", max_size=300),
    st.dates(),
    st.sampled_from(["10.0.0.0/8", "10.0.0.10", "10.224.0.0/16", "0.0.0.0/0", "::/0", "1.30", "*.co.uk", "nginx", "kube-system",
                     "default", "1000m", "2Gi", "250MB", "/api/(?=x)", "GET", "FETCH", "l7", "fqdn", "backend", "frontend"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), inner, max_size=4)), max_leaves=12)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "delete", "duplicate-flow", "add-key", "rename"]))
        where = draw(st.sampled_from(paths(config)[1:]))
        parent = config
        for part in where[:-1]:
            parent = parent[part]
        last = where[-1]
        if kind == "replace":
            parent[last] = draw(values)
        elif kind == "delete" and isinstance(parent, dict):
            del parent[last]
        elif kind == "duplicate-flow" and isinstance(config.get("zero-trust-aks:flows"), list) and config["zero-trust-aks:flows"]:
            config["zero-trust-aks:flows"].append(copy.deepcopy(config["zero-trust-aks:flows"][0]))
        elif kind == "add-key" and isinstance(parent, dict):
            parent[draw(st.text(max_size=20))] = draw(values)
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_A1", min_size=1, max_size=70))] = parent.pop(last)
    return config


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(config=mutated())
def test_a_mutated_stack_is_either_valid_and_renders_valid_objects_or_clean_one_line_errors(config, cnp_schema):
    try:
        cfg = load_config(config)
    except ConfigErrors as e:
        assert e.lines
        for line in e.lines:
            assert "\n" not in line and line.startswith(PREFIXES), line
            assert "Traceback" not in line and "Input should" not in line and not INTERNALS.search(line), line
        return
    objects = render(cfg).all()
    for o in objects:
        name = o["metadata"]["name"]
        assert len(name) <= 253
        if o["kind"] in ("Service", "Namespace"):
            assert DNS1035.match(name) if o["kind"] == "Service" else DNS1123.match(name), name
        if o["kind"] == "CiliumNetworkPolicy":
            assert schema_errors(cnp_schema, o) == []
    if cfg.cluster is not None:
        c = cfg.cluster
        net = ipaddress.ip_network(c.service_cidr)
        assert ipaddress.ip_address(c.dns_service_ip) in net
        assert len(c.dns_prefix) <= 54


TEXT = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


@st.composite
def mutated_text(draw) -> str:
    lines = TEXT.splitlines()
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["duplicate", "delete", "poke", "indent"]))
        if kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "poke" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            c = draw(st.sampled_from(list("-:[]{}&*!|>'\"%@` \t0123456789yn~") + ["on", "no", "2026-01-02", "1.30", "9" * 5000]))
            lines[i] = lines[i][:j] + c + lines[i][j + 1 :]
        else:
            lines[i] = "  " + lines[i]
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], derandomize=True)
@given(text=mutated_text())
def test_a_mutated_stack_file_text_gives_a_config_or_clean_one_line_errors(text, tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.fuzz.yaml").write_text(text)
    try:
        stack = read_stack(tmp_path, "fuzz")
        load_config(stack.config, stack.problems)
    except StackFileError as e:
        assert e.lines and all("\n" not in line and line.startswith("Pulumi.fuzz.yaml") for line in e.lines), e.lines
    except ConfigErrors as e:
        assert e.lines and all("\n" not in line and line.startswith((*PREFIXES, "Pulumi.fuzz.yaml")) for line in e.lines), e.lines
        assert not [line for line in e.lines if INTERNALS.search(line)], e.lines

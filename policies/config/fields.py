"""The value types config keys are made of: names, ports, ranges, images, quantities..., each validated
with a message in our words (never a regular expression), and the base of every model."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, StringConstraints

from policies.cilium_versions import CILIUM, aks_cilium, parse_minor
from policies.config import azure, kubernetes, outside_names
from policies.config.errors import show

PROJECT = "zero-trust-aks"
"""The Pulumi project name: the namespace of every project config key."""

PROBE_IMAGE = "curlimages/curl:8.11.1@sha256:c1fe1679c34d9784c1b0d1e5f62ac0a79fca01fb6377cdd33e90473c6f9f9a69"
"""The probe image (curl on Alpine; runs as uid 100), pinned by digest."""


def _shaped(regex: str, words: str):
    """An AfterValidator: the value must match ``regex``, said in ``words`` (never the expression itself)."""
    rx = re.compile(regex)

    def validate(value: str) -> str:
        if not rx.search(value):
            raise ValueError(f"{show(value)} is not {words}")
        return value

    return AfterValidator(validate)


def _check(problem):
    """An AfterValidator from a ``value -> problem or None`` function."""

    def validate(value):
        why = problem(value)
        if why:
            raise ValueError(why)
        return value

    return AfterValidator(validate)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise ValueError(f"not a CIDR range ({e})") from None
    return str(net)


def _ipv4_cidr(value: str) -> str:
    value = _cidr(value)
    if ipaddress.ip_network(value).version != 4:
        raise ValueError("must be an IPv4 range (this stack builds a single-stack IPv4 cluster)")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("not an IP address") from None


def _public_ip(value: str) -> str:
    value = _ip(value)
    if not ipaddress.ip_address(value).is_global:
        raise ValueError("must be a public address outside the cluster (a private one may be a pod, node or Azure service)")
    return value


def _kubernetes_version(value: str) -> str:
    aks_cilium(value)  # raises ValueError naming the versions AKS documents Cilium for
    return value


def _cilium_minor(value: str) -> str:
    if parse_minor(value) not in CILIUM:
        raise ValueError(f"not a Cilium version this tool knows; known: {', '.join(f'{a}.{b}' for a, b in CILIUM)}")
    return value


def _pinned_image(value: str) -> str:
    if "@sha256:" not in value:
        raise ValueError(
            "must be pinned by digest (image@sha256:<64 hex digits>): the probes run with each source workload's "
            "identity, so a moved tag could change what they do"
        )
    return value


DnsLabel = Annotated[str, _shaped(kubernetes.DNS1123_LABEL, "a DNS label (1-63 lower-case letters, digits or '-', starting and ending with a letter or digit)")]
DnsSubdomain = Annotated[str, StringConstraints(max_length=253), _shaped(kubernetes.DNS1123_SUBDOMAIN, "a DNS subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)")]
ConfigKey = Annotated[str, StringConstraints(max_length=253), _shaped(kubernetes.CONFIG_KEY, "a Secret or ConfigMap key (letters, digits, '-', '_' and '.')")]
EnvName = Annotated[str, StringConstraints(max_length=256), _shaped(kubernetes.ENV_NAME, "an environment variable name (letters, digits, '-', '_' and '.', not starting with a digit)")]
UserId = Annotated[int, Field(ge=0, le=2147483647, strict=True)]
LabelKey = Annotated[str, _check(kubernetes.label_key_problem)]
LabelValue = Annotated[str, _shaped(kubernetes.LABEL_VALUE, "a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit; or empty)")]
Fqdn = Annotated[
    str,
    StringConstraints(to_lower=True, max_length=253),
    _check(outside_names.fqdn_problem),
    _check(outside_names.wildcard_problem),
]
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
PortName = Annotated[str, StringConstraints(max_length=15), _shaped(r"^[a-z0-9]+(-[a-z0-9]+)*$", "a port name (1-15 lower-case letters, digits and single hyphens)"), _check(kubernetes.port_name_problem)]
"""A Kubernetes port name (IANA_SVC_NAME): 1-15 lower-case letters, digits and single hyphens, with a letter."""
def _port_ref(value: object) -> int | str:
    """A port a flow or check names: a number clients dial, or a port's name (one message, in our words)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        kind = {bool: "true/false", list: "a list", dict: "a mapping", float: "a fraction"}.get(type(value), type(value).__name__)
        raise ValueError(f"must be a port number (1-65535) or a port's name, not {kind}")
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"{value} is not a port number (1-65535)")
        return value
    if value.isdigit():
        raise ValueError(f"{value!r} is a number in quotes: write the port without quotes ({value})")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", value) or len(value) > 15:
        raise ValueError(f"{value!r} is not a port name: 1-15 lower-case letters, digits and single hyphens")
    why = kubernetes.port_name_problem(value)
    if why:
        raise ValueError(why)
    return value


PortRef = Annotated[int | str, PlainValidator(_port_ref)]
"""A port a flow names: its number (what clients dial) or its name."""
Protocol = Literal["TCP", "UDP", "SCTP"]
Cidr = Annotated[str, AfterValidator(_cidr)]
Ipv4Cidr = Annotated[str, AfterValidator(_ipv4_cidr)]
Guid = Annotated[str, _shaped(azure.GUID, "a GUID (8-4-4-4-12 hexadecimal digits, as Entra ID writes object and tenant IDs)")]
Quantity = Annotated[str, _check(kubernetes.quantity_problem)]
Image = Annotated[str, StringConstraints(min_length=1, max_length=512), _shaped(r"^[^\s]+$", "an image reference (no spaces)")]
Count = Annotated[int, Field(strict=True)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=False)

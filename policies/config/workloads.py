"""What a workload, a peer and a flow accept."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, PlainSerializer, PlainValidator, StringConstraints, ValidationError

from policies.config import outside_names
from policies.config.fields import (
    Cidr,
    ConfigKey,
    Count,
    DnsLabel,
    DnsSubdomain,
    EnvName,
    Fqdn,
    Image,
    LabelKey,
    LabelValue,
    Port,
    PortName,
    PortRef,
    Protocol,
    Quantity,
    UserId,
    _Model,
    _check,
    _shaped,
)
from policies.config.limits import MAX_ARGS, MAX_ENV, MAX_FQDNS_PER_FLOW, MAX_HTTP_RULES_PER_FLOW, MAX_LABELS_PER_WORKLOAD, MAX_REPLICAS


class Resources(_Model):
    cpu_request: Quantity = Field("50m", alias="cpuRequest")
    cpu_limit: Quantity = Field("250m", alias="cpuLimit")
    memory_request: Quantity = Field("64Mi", alias="memoryRequest")
    memory_limit: Quantity = Field("128Mi", alias="memoryLimit")


class PortSpec(_Model):
    """A port a workload serves, by name: ``port`` is what clients dial (the Service's port),
    ``targetPort`` what the container listens on (default: the same)."""

    name: PortName
    port: Port
    target_port: Port | None = Field(None, alias="targetPort")
    protocol: Protocol = "TCP"

    @property
    def container_port(self) -> int:
        """Where the pods listen: what Cilium enforces, after the Service's translation."""
        return self.target_port or self.port


class KeyRef(_Model):
    """A key of a Secret or ConfigMap in the workload's namespace."""

    name: DnsSubdomain
    key: ConfigKey


class EnvFrom(_Model):
    """An environment variable's value from a Secret or a ConfigMap (exactly one)."""

    secret_key_ref: KeyRef | None = Field(None, alias="secretKeyRef")
    config_map_key_ref: KeyRef | None = Field(None, alias="configMapKeyRef")


def _env_value(value: object) -> str | EnvFrom:
    """A plain string, or a reference to a Secret's or ConfigMap's key (one message, in our words)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        try:
            return EnvFrom.model_validate(value)
        except ValidationError as e:
            from policies.config.errors import pydantic_line

            raise ValueError("; ".join(pydantic_line(err, EnvFrom) for err in e.errors())) from None
    hint = f' (quote it: "{str(value).lower() if isinstance(value, bool) else value}")' if isinstance(value, (bool, int, float)) else ""
    raise ValueError(f"must be a string, or {{secretKeyRef: {{name, key}}}} or {{configMapKeyRef: {{name, key}}}}{hint}")


EnvValue = Annotated[
    str | EnvFrom,
    PlainValidator(_env_value),
    PlainSerializer(lambda v: v if isinstance(v, str) else v.model_dump(by_alias=True, exclude_none=True)),
]


class HealthCheck(_Model):
    """An HTTP readiness and liveness check: GET ``path`` on ``port`` (a port name or number; default the first TCP port)."""

    path: Annotated[str, StringConstraints(max_length=1024), _shaped(r"^/\S*$", "a URL path (starting with '/', no spaces)")]
    port: PortRef | None = None


class WorkloadConfig(_Model):
    """A workload: one the stack deploys (``image``: a Deployment, and a Service when a flow targets it), or one
    deployed elsewhere (``selector``: Helm, Argo CD, another stack), whose pods the stack only polices."""

    namespace: DnsLabel
    image: Image | None = None
    selector: dict[LabelKey, LabelValue] | None = Field(None, min_length=1, max_length=MAX_LABELS_PER_WORKLOAD)
    """Deployed elsewhere: the labels that select its pods (no Deployment or Service is rendered)."""
    service: DnsLabel | None = None
    """Deployed elsewhere: the Service clients reach it by (the probes dial it); none: its checks are not probed."""
    port: Port | None = None
    """The one port it serves (named `serve`); or `ports`; or neither for a workload that receives nothing."""
    target_port: Port | None = Field(None, alias="targetPort")
    """With `port`: where the container listens, when it differs from the port clients dial."""
    protocol: Protocol = "TCP"
    ports: tuple[PortSpec, ...] | None = Field(None, min_length=1, max_length=32)
    """Several named ports: `[{name, port, targetPort?, protocol?}]`."""
    env: dict[EnvName, EnvValue] | None = Field(None, max_length=MAX_ENV)
    """Environment variables: a plain value, or `{secretKeyRef: {name, key}}` / `{configMapKeyRef: {name, key}}`."""
    args: tuple[str, ...] | None = Field(None, max_length=MAX_ARGS)
    command: tuple[str, ...] | None = Field(None, max_length=MAX_ARGS)
    service_account_name: DnsSubdomain | None = Field(None, alias="serviceAccountName")
    """The pods' service account (the stack creates it; its token is still mounted only with serviceAccountToken)."""
    run_as_user: UserId | None = Field(None, alias="runAsUser")
    run_as_group: UserId | None = Field(None, alias="runAsGroup")
    health_check: HealthCheck | None = Field(None, alias="healthCheck")
    replicas: Count = Field(1, ge=0, le=MAX_REPLICAS)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS_PER_WORKLOAD)
    """Extra pod labels. `app` is set to the workload's name and cannot be overridden."""
    security_profile: Literal["restricted", "baseline"] = Field("restricted", alias="securityProfile")
    """`restricted`: non-root, all capabilities dropped (Pod Security `restricted`).
    `baseline`: for images that must start as root (e.g. the stock nginx image); still drops every
    capability it does not need and forbids privilege escalation (Pod Security `baseline`)."""
    resources: Resources = Resources()
    service_account_token: bool = Field(False, alias="serviceAccountToken")
    """Mount the service-account token into the pods (off unless the workload talks to the API)."""
    expose: Literal["none", "loadBalancer"] = "none"
    """`loadBalancer`: a Service of type LoadBalancer (externalTrafficPolicy Local, so Cilium sees the
    client as `world`); a flow from an `entity: world` peer may then reach it."""

    @property
    def deployed(self) -> bool:
        """Whether the stack deploys it (an image), rather than policing pods deployed elsewhere (a selector)."""
        return self.selector is None

    @cached_property
    def served(self) -> tuple[PortSpec, ...]:
        """Every port the workload serves, named (built once: the model is frozen)."""
        if self.ports is not None:
            return self.ports
        if self.port is not None:
            return (PortSpec(name="serve", port=self.port, targetPort=self.target_port, protocol=self.protocol),)
        return ()

    def find_port(self, ref: int | str, protocol: str | None = None) -> PortSpec | None:
        """The served port a flow names: by name, or by the number clients dial (and the protocol)."""
        for spec in self.served:
            if (spec.name == ref if isinstance(ref, str) else spec.port == ref) and protocol in (None, spec.protocol):
                return spec
        return None

    def find_container_port(self, number: int, protocol: str) -> PortSpec | None:
        """The served port whose pods listen on ``number`` (what a capture records, after the Service)."""
        return next((s for s in self.served if s.container_port == number and s.protocol == protocol), None)


PEER_ENTITIES = ("world", "kube-apiserver", "host", "remote-node", "cluster")


class PeerConfig(_Model):
    """Something flows talk to that the stack does not deploy: exactly one of
    `namespace` (pods of a namespace the stack does not manage, optionally by `labels`),
    `cidrs` (addresses outside the cluster, less `except`) or `entity` (a Cilium entity)."""

    namespace: DnsLabel | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS_PER_WORKLOAD)
    cidrs: tuple[Cidr, ...] | None = Field(None, min_length=1, max_length=64)
    except_: tuple[Cidr, ...] = Field((), alias="except", max_length=64)
    entity: Literal[PEER_ENTITIES] | None = None  # type: ignore[valid-type]

    @property
    def kind(self) -> str | None:
        """``pods``, ``addresses`` or ``entity``; None when not exactly one is given."""
        given = [k for k, v in (("pods", self.namespace), ("addresses", self.cidrs), ("entity", self.entity)) if v is not None]
        return given[0] if len(given) == 1 else None


HttpMethod = Literal[outside_names.HTTP_METHODS]  # type: ignore[valid-type]


class HttpRule(_Model):
    method: HttpMethod | None = None
    path: Annotated[str, StringConstraints(max_length=1024), _shaped(r"^/", "a path expression starting with '/'"), _check(outside_names.re2_problem)] | None = None
    """A regular expression, as Envoy matches it (RE2, e.g. `/api/v1/.*`)."""


class Flow(_Model):
    source: str = Field(alias="from")
    to: str | None = None
    to_fqdns: tuple[Fqdn, ...] | None = Field(None, alias="toFqdns", min_length=1, max_length=MAX_FQDNS_PER_FLOW)
    port: PortRef | None = None
    """A port number, or the name of one of the target's ports."""
    protocol: Protocol | None = None
    http: tuple[HttpRule, ...] | None = Field(None, min_length=1, max_length=MAX_HTTP_RULES_PER_FLOW)

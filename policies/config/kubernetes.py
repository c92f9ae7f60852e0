"""What the Kubernetes API server accepts: names, label keys, quantities, and the namespaces it (or AKS) owns.

Each function returns a problem in words, or None; the models and the
cross-field rules turn them into config errors.
"""

from __future__ import annotations

import re
import importlib.util
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
"""A Secret or ConfigMap key."""
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
"""An environment variable name (the API server's relaxed rule: no '=', not starting with a digit)."""
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"

# Namespaces that Kubernetes or AKS own: a stack that put default deny on them would cut
# the cluster's own components off (AKS add-ons and extensions install into these).
RESERVED_NAMESPACES = frozenset(
    {
        "default",
        "gatekeeper-system",  # Azure Policy add-on
        "app-routing-system",  # application routing add-on
        "aks-command",  # az aks command invoke
        "aks-istio-system",  # Istio add-on
        "aks-istio-ingress",
        "aks-istio-egress",
        "azure-arc",
        "calico-system",
        "tigera-operator",
        "dataprotection-microsoft",  # backup extension
        "flux-system",  # GitOps extension
        "azappconfig-system",
        "azureml",
        "keda",
    }
)
RESERVED_PREFIXES = ("kube-",)


def label_key_problem(key: str) -> str | None:
    """Kubernetes label key rules: an optional DNS-1123 subdomain prefix (<= 253) and a name (<= 63)."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "an empty prefix before '/'"
    if slash:
        if len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix):
            return f"its prefix {prefix!r} must be a DNS subdomain of at most 253 characters (lower case, digits, '-', '.')"
    if not _LABEL_NAME.match(name):
        return (
            f"its name {name!r} must be 1-63 characters: letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def quantity_problem(value: str) -> str | None:
    try:
        quantity(value)
    except ValueError:
        return f"{value!r} is not a Kubernetes quantity (e.g. 250m or 0.5 for CPU, 128Mi or 1Gi for memory)"
    return None


def quantity(value: str) -> Decimal:
    """A Kubernetes quantity as a number, by the ``kubernetes`` client's own parser."""
    return _parse_quantity()(value)


@lru_cache(maxsize=1)
def _parse_quantity():
    """``kubernetes.utils.quantity.parse_quantity``, loaded from its file: the module needs only ``decimal``,
    while importing it by name runs the client package's ``__init__`` (its API, websocket and dynamic
    clients: about a tenth of a second the plan would otherwise spend)."""
    spec = importlib.util.find_spec("kubernetes")
    assert spec is not None and spec.submodule_search_locations, "the kubernetes client is a dependency"
    path = Path(spec.submodule_search_locations[0]) / "utils" / "quantity.py"
    module_spec = importlib.util.spec_from_file_location("_zero_trust_aks_k8s_quantity", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.parse_quantity


def reserved_namespace(namespace: str) -> bool:
    return namespace in RESERVED_NAMESPACES or namespace.startswith(RESERVED_PREFIXES)


def port_name_problem(name: str) -> str | None:
    """A port name (IANA_SVC_NAME) needs a letter, so it can never be read as a number."""
    return None if any(c.isalpha() for c in name) else f"{name!r} is not a port name: it needs a letter (or write the port as a number)"

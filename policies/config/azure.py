"""What ARM accepts for the AKS cluster, checked before anything is registered.

- DNS prefix: 1-54 characters, letters, digits and hyphens, starting and
  ending with a letter or digit (``dnsPrefix`` of Microsoft.ContainerService/managedClusters);
  the stack derives it from the cluster name.
- ``dnsServiceIP`` lies inside ``serviceCidr`` and is neither its network
  address nor its first address (that one is the ``kubernetes`` Service).
- Pod, service and VNet ranges do not overlap. This project never brings its
  own subnet, so AKS creates the VNet, ``10.224.0.0/12``. Some ranges AKS
  reserves for itself and refuses: 169.254.0.0/16, 172.30.0.0/16,
  172.31.0.0/16 and 192.0.2.0/24.
- ``authorizedIPRanges``: at most 200 (2,000 only with API server VNet integration).
- Entra ID group and tenant ids are GUIDs.
"""

from __future__ import annotations

import ipaddress
import re

DNS_PREFIX = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]{0,52}[A-Za-z0-9])?$")
MANAGED_VNET = ipaddress.ip_network("10.224.0.0/12")
"""The VNet AKS creates when the cluster brings no subnet of its own (nodes take 10.224.0.x)."""
AKS_RESERVED_RANGES = tuple(
    ipaddress.ip_network(c) for c in ("169.254.0.0/16", "172.30.0.0/16", "172.31.0.0/16", "192.0.2.0/24")
)
MAX_AUTHORIZED_IP_RANGES = 200
AKS_SYSTEM_IDENTITIES = 16
"""Security identities of AKS's own pods that are not host-network (coredns and its autoscaler,
konnectivity, metrics-server, Azure Policy's gatekeeper and webhook, Defender's and ACNS's
collectors...): an estimate, for the policy-map budget (``policies.analysis.budget``)."""
LOCAL_DNS_RANGE = "169.254.10.0/24"
"""Where AKS LocalDNS answers pods on each node. Under egress default deny pods need egress to it and
to the ``host`` entity on port 53, or every lookup fails (articles/aks/network-policy-best-practices.md;
Azure/AKS#5864)."""
GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def dns_prefix_problem(prefix: str) -> str | None:
    if DNS_PREFIX.match(prefix):
        return None
    return (
        f"the DNS prefix AKS derives from it, {prefix!r}, must be 1-54 letters, digits or hyphens, "
        "starting and ending with a letter or digit"
    )


def dns_service_ip_problem(dns_ip: str, service_cidr: str) -> str | None:
    ip, net = ipaddress.ip_address(dns_ip), ipaddress.ip_network(service_cidr)
    if ip.version != net.version or ip not in net:
        return f"{dns_ip} must lie inside serviceCidr {service_cidr}"
    if ip == net.network_address:
        return f"{dns_ip} is the network address of serviceCidr {service_cidr}; use e.g. {net.network_address + 10}"
    if ip == net.network_address + 1:
        return f"{dns_ip} is the first address of serviceCidr {service_cidr}, which the kubernetes Service takes; use e.g. {net.network_address + 10}"
    if net.num_addresses > 2 and ip == net.broadcast_address:
        return f"{dns_ip} is the broadcast address of serviceCidr {service_cidr}"
    return None


def overlaps(a: str, b) -> bool:
    na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b) if isinstance(b, str) else b
    return na.version == nb.version and na.overlaps(nb)


def reserved_range_problem(cidr: str) -> str | None:
    for reserved in AKS_RESERVED_RANGES:
        if overlaps(cidr, reserved):
            return f"{cidr} overlaps {reserved}, which AKS reserves"
    return None

"""What a change to a stack does to its rules, for a reviewer: every widening, narrowing or change.

The connectivity matrix shows which cells flip; it cannot see a rule that admits more on
the same cell (an HTTP path from ``/charge`` to ``/.*``, an outside name from
``api.stripe.com`` to ``*.stripe.com``, a wider CIDR). This module compares the rendered
policies of two plans grant by grant, where a grant is one rule's L3 peer kind and its
ports, under one policy's subject:

- ``http``: the HTTP rules on a port (method and path, paths are RE2 expressions);
- ``fqdn``: the outside names or patterns (``toFQDNs``, and DNS rules' names);
- ``cidr``: address ranges (``from/toCIDR(Set)``, less their excepts);
- ``entity``: Cilium entities;
- ``port``: the ports a peer is admitted on.

Each difference is ``widened`` (everything before is still admitted, and more),
``narrowed`` (the reverse), ``changed`` (neither), ``added`` or ``removed``, with the flow
each rule belongs to (its policy's ``zero-trust-aks/flows`` annotation).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FLOWS_ANNOTATION = "zero-trust-aks/flows"
"""JSON on a workload's policy: rule position (``ingress[0]``) -> the flow it comes from."""
PEER_KEYS = ("Endpoints", "Entities", "CIDR", "CIDRSet", "FQDNs", "Services", "Nodes", "Groups")


@dataclass(frozen=True)
class RuleChange:
    policy: str
    """``namespace/name`` of the policy (the head's, or the base's when removed)."""
    flow: str
    what: str
    """``http``, ``fqdn``, ``cidr``, ``entity`` or ``port``."""
    change: str
    """``widened``, ``narrowed``, ``changed``, ``added`` or ``removed``."""
    before: str
    after: str

    @property
    def line(self) -> str:
        flow = f" ({self.flow})" if self.flow else ""
        return f"{self.change} {self.what} in {self.policy}{flow}: {self.before or '-'} -> {self.after or '-'}"


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ports(rule: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for pr in rule.get("toPorts") or [{}]:
        for pp in (pr.get("ports") or [{}]) if isinstance(pr, Mapping) else []:
            port = str(pp.get("port", "0"))
            end = pp.get("endPort")
            out.append((f"{port}-{end}" if end else port, str(pp.get("protocol") or "ANY")))
    return out


def _flows_of(p: Mapping[str, Any]) -> dict[str, str]:
    try:
        flows = json.loads(((p.get("metadata") or {}).get("annotations") or {}).get(FLOWS_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return flows if isinstance(flows, dict) else {}


def grants(policies: Iterable[Mapping[str, Any]], flows: dict[tuple, set[str]] | None = None) -> dict[tuple, set[str]]:
    """(policy key, direction, grant kind, peer, port) -> the values compared; ``flows`` collects each grant's flows."""
    out: dict[tuple, set[str]] = {}
    for p in policies:
        meta = p.get("metadata") or {}
        ref = f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")
        subject = _canon((p.get("spec") or {}).get("endpointSelector"))
        base = (ref, subject)
        named = _flows_of(p)
        for direction in ("ingress", "egress", "ingressDeny", "egressDeny"):
            for position, rule in enumerate((p.get("spec") or {}).get(direction) or []):
                touched: set[tuple] = set()

                def add(key: tuple, value: str) -> None:
                    out.setdefault(key, set()).add(value)
                    touched.add(key)

                side = "from" if direction.startswith("ingress") else "to"
                peer = {k: v for k, v in rule.items() if k.startswith(side) and k[len(side):] in PEER_KEYS}
                peer_key = _canon({k: v for k, v in peer.items() if not k.endswith(("CIDR", "CIDRSet", "Entities", "FQDNs"))})
                ports = _ports(rule)
                for port in ports:
                    add((*base, direction, "port", peer_key), f"{port[0]}/{port[1]}")
                for cidr in peer.get(f"{side}CIDR") or []:
                    for port in ports:
                        add((*base, direction, "cidr", f"{port[0]}/{port[1]}"), str(cidr))
                for c in peer.get(f"{side}CIDRSet") or []:
                    text = str(c.get("cidr")) + "".join(f" except {e}" for e in c.get("except") or [])
                    for port in ports:
                        add((*base, direction, "cidr", f"{port[0]}/{port[1]}"), text)
                for e in peer.get(f"{side}Entities") or []:
                    for port in ports:
                        add((*base, direction, "entity", f"{port[0]}/{port[1]}"), str(e))
                for f in peer.get("toFQDNs") or []:
                    for port in ports:
                        add((*base, direction, "fqdn", f"{port[0]}/{port[1]}"), str(f.get("matchName") or f.get("matchPattern")))
                for pr in rule.get("toPorts") or []:
                    rules = (pr.get("rules") or {}) if isinstance(pr, Mapping) else {}
                    for pp in pr.get("ports") or []:
                        port = f"{pp.get('port')}/{pp.get('protocol') or 'ANY'}"
                        for h in rules.get("http") or []:
                            add((*base, direction, "http", peer_key + port), f"{h.get('method') or '*'} {h.get('path') or '/*'}")
                        for d in rules.get("dns") or []:
                            add((*base, direction, "fqdn", "dns " + port), str(d.get("matchName") or d.get("matchPattern")))
                flow = named.get(f"{direction}[{position}]")
                if flows is not None and flow:
                    for key in touched:
                        flows.setdefault(key, set()).add(flow)
    return out


def _covers(what: str, wide: str, narrow: str) -> bool:
    """Whether the value ``wide`` admits everything ``narrow`` does."""
    if wide == narrow:
        return True
    if what == "http":
        wm, wp = wide.split(" ", 1)
        nm, np_ = narrow.split(" ", 1)
        if wm not in ("*", nm):
            return False
        if wp in ("/*", "/.*", ".*"):
            return True
        if re.escape(np_) != np_:
            return False  # the old path is a pattern itself: inclusion of patterns is not decided here
        try:
            return re.fullmatch(wp, np_) is not None
        except re.error:
            return False
    if what == "fqdn":
        pattern = "^" + re.escape(wide.lower().rstrip(".")).replace(r"\*\*\.", r"([-a-z0-9_]+\.)*").replace(r"\*", "[-a-z0-9_]*") + "$"
        return re.match(pattern, narrow.lower().rstrip(".").replace("*", "x")) is not None
    if what == "cidr":
        wc, *wex = wide.split(" except ")
        nc, *nex = narrow.split(" except ")
        try:
            wn, nn = ipaddress.ip_network(wc), ipaddress.ip_network(nc)
        except ValueError:
            return False
        if wn.version != nn.version or not nn.subnet_of(wn):
            return False
        holes = [ipaddress.ip_network(e) for e in wex]
        return not any(h.overlaps(nn) and not any(h.subnet_of(ipaddress.ip_network(x)) for x in nex) for h in holes)
    if what == "port":
        (wr, wproto), (nr, nproto) = wide.split("/"), narrow.split("/")
        if wproto not in ("ANY", nproto):
            return False
        wl, _, wh = wr.partition("-")
        nl, _, nh = nr.partition("-")
        if not (wl.isdigit() and nl.isdigit()):
            return False
        if wl == "0":
            return True
        return int(wl) <= int(nl) and int(nh or nl) <= int(wh or wl)
    return False  # entities: only the same value covers


def _compare(what: str, before: set[str], after: set[str]) -> str | None:
    if before == after:
        return None
    wider = all(any(_covers(what, a, b) for a in after) for b in before)
    narrower = all(any(_covers(what, b, a) for b in before) for a in after)
    if wider and not narrower:
        return "widened"
    if narrower and not wider:
        return "narrowed"
    return "changed"


def rule_changes(base: Iterable[Mapping[str, Any]], head: Iterable[Mapping[str, Any]]) -> list[RuleChange]:
    """Every grant that differs between the base's rendered policies and the head's."""
    base, head = list(base), list(head)
    base_flows: dict[tuple, set[str]] = {}
    head_flows: dict[tuple, set[str]] = {}
    b, h = grants(base, base_flows), grants(head, head_flows)
    # Pair grants by everything but the policy's name: a rule that moves to a renamed policy still pairs.
    shape_flows: dict[tuple, set[str]] = {}

    def by_shape(g, flows):
        out: dict[tuple, tuple[str, set[str]]] = {}
        for (ref, subject, direction, what, key), values in g.items():
            ns = ref.split("/", 1)[0] if "/" in ref else ""
            shape = (ns, subject, direction, what, key)
            prev = out.get(shape)
            out[shape] = (ref, values | (prev[1] if prev else set()))
            shape_flows.setdefault(shape, set()).update(flows.get((ref, subject, direction, what, key), ()))
        return out

    hs = by_shape(h, head_flows)  # the head names the flows; the base only those the head removed
    bs = by_shape(b, {k: v for k, v in base_flows.items() if k not in head_flows})

    def _flow(shape: tuple) -> str:
        return "; ".join(sorted(shape_flows.get(shape, ())))

    changes = []
    for shape in sorted(set(bs) | set(hs)):
        what = shape[3]
        if shape not in bs:
            ref, after = hs[shape]
            changes.append(RuleChange(ref, _flow(shape), what, "added", "", ", ".join(sorted(after))))
            continue
        if shape not in hs:
            ref, before = bs[shape]
            changes.append(RuleChange(ref, _flow(shape), what, "removed", ", ".join(sorted(before)), ""))
            continue
        (_, before), (ref, after) = bs[shape], hs[shape]
        verdict = _compare(what, before, after)
        if verdict:
            changes.append(RuleChange(ref, _flow(shape), what, verdict, ", ".join(sorted(before)), ", ".join(sorted(after))))
    return list(dict.fromkeys(changes))  # a name change seen in toFQDNs and in each DNS port is one change

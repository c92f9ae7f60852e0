"""Stack config (full key -> value, as ``pulumi config`` holds it) -> ``StackConfig``, every problem at once.

1. Each value must be plain JSON data (what the Pulumi engine passes a
   program): a mapping with string keys, a list, a string, a number, true/false
   or null. Structured values may arrive as JSON strings and are decoded.
   Dates, sets, non-string keys and oversized or too-deep values are refused
   here, before any model sees them.
2. Each top-level key is validated on its own, and each workload and flow on
   its own, so one bad entry hides nothing else.
3. The cross-field rules (``rules``) run on whatever validated.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from policies.config import limits
from policies.config.errors import ConfigErrors, format_path, pydantic_line
from policies.config.models import PROJECT, DnsLabel, Flow, PeerConfig, StackConfig, WorkloadConfig
from policies.config.rules import Partial, stack_errors
from policies.config.stackfile import SECRET_PLACEHOLDER

KNOWN_KEYS = tuple(f.alias for f in StackConfig.model_fields.values())
_CONFIG_KEY = re.compile(r"^[A-Za-z][-\w.]*:[-\w./]+$")
_REPORTED = object()
"""Stands for a value already reported as not plain data: its key is judged no further."""


def load_config(raw: Mapping[str, Any], problems: Sequence[str] = ()) -> StackConfig:
    """Validate a stack's config (full key -> value) into a ``StackConfig``.

    Raises ``ConfigErrors`` listing every problem, each on one line with its key path, after ``problems``
    already found in the stack's files (``StackFiles.problems``): all of them at once.
    """
    if not isinstance(raw, Mapping):
        raise ConfigErrors([*problems, f"config: must be a mapping of config keys to values, not {type(raw).__name__}"])
    decoded, errors = _decode(raw)
    errors = [*problems, *errors]
    if any(line.startswith("!") for line in errors):  # too large to look at further
        raise ConfigErrors([line.lstrip("!") for line in errors])
    for key in sorted(decoded):
        if key.startswith(f"{PROJECT}:") and key not in KNOWN_KEYS:
            ours = sorted(k for k in KNOWN_KEYS if k.startswith(PROJECT))
            close = difflib.get_close_matches(key, ours, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            errors.append(f"{key}: unknown config key; {hint}the project's keys are: {', '.join(ours)}")
    size = _size_errors(decoded)
    if size:
        raise ConfigErrors(errors + size)

    partial, field_errors = _validate_fields(decoded)
    errors += field_errors
    errors += stack_errors(partial)
    if errors:
        raise ConfigErrors(errors)
    try:
        return StackConfig.model_validate({k: v for k, v in decoded.items() if k in KNOWN_KEYS and v is not _REPORTED})
    except ValidationError as e:  # the per-key pass above should have said it already
        raise ConfigErrors([pydantic_line(err, StackConfig) for err in e.errors()]) from None


# -- 1. plain JSON data ---------------------------------------------------------------------------


def _decode(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Decode JSON strings and check every value is plain JSON data. Lines starting with ``!`` are fatal.

    A key whose value is not plain data is reported and left out, marked in ``_REPORTED``.
    """
    out: dict[str, Any] = {}
    errors: list[str] = []
    budget = [limits.MAX_CONFIG_NODES]
    for key, value in raw.items():
        if not isinstance(key, str) or not _CONFIG_KEY.match(key):
            errors.append(f"config: {key!r} is not a config key; keys look like {PROJECT}:workloads or azure-native:location")
            continue
        if isinstance(value, str) and value[:1] in ("{", "[") and value != SECRET_PLACEHOLDER:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                errors.append(f"{key}: not valid JSON ({e.msg} at character {e.pos})")
                continue
            except RecursionError:
                errors.append(f"!{key}: nested too deeply (at most {limits.MAX_CONFIG_DEPTH} levels)")
                continue
        problems = list(_plain_data(value, (key,), budget, 0))
        if budget[0] < 0:
            return out, [f"!config: more than {limits.MAX_CONFIG_NODES} values in all; split the stack"]
        if problems:
            errors += problems
            if any(p.startswith("!") for p in problems):
                return out, errors
            out[key] = _REPORTED
            continue
        out[key] = value
    return out, errors


def _plain_data(value: Any, loc: tuple, budget: list[int], depth: int):
    """Problems that make ``value`` something other than JSON data (iterative in spirit: bounded depth)."""
    budget[0] -= 1
    if budget[0] < 0:
        return
    if depth > limits.MAX_CONFIG_DEPTH:
        yield f"!{format_path(loc)}: nested too deeply (at most {limits.MAX_CONFIG_DEPTH} levels)"
        return
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            yield f"{format_path(loc)}: {value} is not a number JSON can carry"
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                yield (
                    f"{format_path(loc)}: the key {k!r} must be a string (YAML reads on/off/yes/no as true/false "
                    "and bare numbers as numbers; quote the key)"
                )
                continue
            yield from _plain_data(v, loc + (k,), budget, depth + 1)
            if budget[0] < 0:
                return
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _plain_data(v, loc + (i,), budget, depth + 1)
            if budget[0] < 0:
                return
        return
    if isinstance(value, (datetime.date, datetime.datetime)):
        yield f"{format_path(loc)}: YAML read {value.isoformat()} as a date; quote it if you meant a string"
        return
    yield f"{format_path(loc)}: {type(value).__name__} values are not allowed (only strings, numbers, true/false, lists and mappings)"


def _size_errors(decoded: Mapping[str, Any]) -> list[str]:
    out = []
    for key, limit, what in (
        (f"{PROJECT}:workloads", limits.MAX_WORKLOADS, "workloads"),
        (f"{PROJECT}:flows", limits.MAX_FLOWS, "flows"),
    ):
        value = decoded.get(key)
        if isinstance(value, (Mapping, list)) and len(value) > limit:
            out.append(
                f"{key}: {len(value)} {what}; at most {limit} per stack, so a plan stays bounded in time "
                "(split the estate into several stacks)"
            )
    return out


# -- 2. key by key ----------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _adapter(name: str) -> TypeAdapter:
    f = StackConfig.model_fields[name]
    return TypeAdapter(Annotated[f.annotation, *f.metadata]) if f.metadata else TypeAdapter(f.annotation)


_NAME = TypeAdapter(DnsLabel)


def _lines(e: ValidationError, prefix: tuple) -> list[str]:
    errs = e.errors()
    # A union with null reports an item's error and a spurious "too short" on its list: keep the item's.
    deeper = [tuple(x["loc"]) for x in errs]
    errs = [
        x for x in errs
        if not (x["type"] == "too_short" and any(len(d) > len(x["loc"]) and d[: len(x["loc"])] == tuple(x["loc"]) for d in deeper))
    ]
    return [pydantic_line(err, StackConfig, prefix) for err in errs]


def _validate_fields(decoded: Mapping[str, Any]) -> tuple[Partial, list[str]]:
    errors: list[str] = []
    values: dict[str, Any] = {}
    partial = Partial(cfg=None)  # type: ignore[arg-type]
    for name, f in StackConfig.model_fields.items():
        key = f.alias
        if decoded.get(key) is _REPORTED:
            partial.failed.add(name)
            if name in ("workloads", "peers", "flows"):
                values[name] = () if name == "flows" else {}
            continue
        if name == "workloads":
            values[name] = _named(decoded.get(key), key, WorkloadConfig, "workload", partial.broken_workloads, errors, partial, required=True)
            continue
        if name == "peers":
            values[name] = _named(decoded.get(key, {}), key, PeerConfig, "peer", partial.broken_peers, errors, partial, required=False)
            continue
        if name == "flows":
            values[name] = _flows(decoded.get(key, []), key, partial, errors)
            continue
        if key not in decoded:
            continue
        try:
            values[name] = _adapter(name).validate_python(decoded[key])
        except ValidationError as e:
            partial.failed.add(name)
            errors += _lines(e, (key,))
    partial.cfg = StackConfig.model_construct(**values)
    return partial, errors


def _named(value: Any, key: str, model, what: str, broken: set[str], errors: list[str], partial: Partial, required: bool) -> dict:
    """A mapping of name -> model, validated entry by entry (a bad entry hides no other)."""
    field = "workloads" if what == "workload" else "peers"
    if value is None and required:
        partial.failed.add(field)
        errors.append(f"{key}: required (a mapping of {what} name to {what})")
        return {}
    if not isinstance(value, Mapping):
        partial.failed.add(field)
        errors.append(f"{key}: must be a mapping of {what} name to {what}, not {type(value).__name__}")
        return {}
    if not value and required:
        partial.failed.add(field)
        errors.append(f"{key}: needs at least one {what}")
        return {}
    out = {}
    for name, body in value.items():
        ok = True
        try:
            _NAME.validate_python(name)
        except ValidationError:
            ok = False
            errors.append(
                f"{key}.{name}: the name {name!r} is not allowed; a {what} name is a DNS label "
                "(1-63 lower-case letters, digits or '-', starting and ending with a letter or digit)"
            )
        if not isinstance(body, Mapping) and name in {f.alias or n for n, f in model.model_fields.items()}:
            # `port: 80` one level too far out: it became an entry of its own
            ok = False
            errors.append(
                f"{key}.{name}: must be a mapping (a {what}'s settings), not {type(body).__name__}; {name!r} is a key of a {what}: "
                f"is it indented too little, under {key.split(':', 1)[1]} instead of under one {what}?"
            )
        else:
            try:
                entry = model.model_validate(body)
            except ValidationError as e:
                ok = False
                errors += _lines(e, (key, name))
        if ok:
            out[name] = entry
        else:
            broken.add(name)
    return out


def _flows(value: Any, key: str, partial: Partial, errors: list[str]) -> tuple[Flow, ...]:
    if not isinstance(value, list):
        partial.failed.add("flows")
        errors.append(f"{key}: must be a list of flows, not {type(value).__name__}")
        return ()
    out = []
    for i, body in enumerate(value):
        try:
            out.append(Flow.model_validate(body))
            partial.flow_index.append(i)
        except ValidationError as e:
            partial.broken_flows.add(i)
            errors += _lines(e, (key, i))
    # The flows that parsed are judged on: a field error in one flow hides nothing in another.
    return tuple(out)

"""Config problems in the project's words: one line each, naming the key path and what is allowed."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel


class ConfigErrors(Exception):
    """Bad stack configuration: one line per problem, each naming the key path."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def format_path(loc: tuple[Any, ...]) -> str:
    """``('zero-trust-aks:flows', 0, 'to')`` -> ``zero-trust-aks:flows[0].to``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, words in ((bool, "true/false"), (int, "a number"), (float, "a number"), (str, "a string"), (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _yaml_hint(value: Any, wanted: str) -> str:
    """A hint where YAML likely turned what the user wrote into another type."""
    if isinstance(value, bool) and wanted == "a string":
        return " (YAML reads yes/no/on/off/true/false as true/false; quote the value)"
    if isinstance(value, float) and wanted == "a string":
        text = getattr(value, "text", None)  # the stack file's own text (policies.config.stackfile.YamlFloat)
        if text is not None and text != str(value):
            return f' (YAML reads an unquoted {text} as the number {value}; quote it: "{text}")'
        return f' (YAML reads an unquoted number as a number; quote it as you meant it: "{text or value}")'
    if isinstance(value, int) and wanted == "a string":
        return f' (quote it: "{value}")'
    if isinstance(value, str) and wanted == "a whole number" and value.strip().isdigit():
        return f" (write it without quotes: {value.strip()})"
    return ""


_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def allowed_keys(model: type[BaseModel]) -> str:
    return ", ".join(f.alias or name for name, f in model.model_fields.items())


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class at ``loc`` below ``root`` (for listing the keys it allows)."""
    current: Any = root
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        else:
            current = _element(current)
            if current is None:
                return None
        while get_origin(current) is not None and not (isinstance(current, type) and issubclass(current, BaseModel)):
            inner = [a for a in get_args(current) if a is not type(None)]
            if get_origin(current) in (tuple, dict, list):
                break
            current = inner[0] if inner else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _element(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not Ellipsis and a is not type(None)]
    if get_origin(annotation) is dict:
        return args[1] if len(args) == 2 else None
    if get_origin(annotation) in (tuple, list):
        return args[0] if args else None
    return args[0] if args else None


_INTERNAL = re.compile(r"^(function-\w+\[.*\]|constrained-\w+|[\w-]+\[.*\]|lax-or-strict|json-or-python|tagged-union)$")
"""Names pydantic gives the branches of its own schemas: never part of a key path."""


def pydantic_line(err: Any, root: type[BaseModel], prefix: tuple[Any, ...] = ()) -> str:
    """One pydantic error as one line of ours."""
    loc = prefix + tuple(p for p in err["loc"] if p != "[key]" and not (isinstance(p, str) and _INTERNAL.match(p)))
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        wanted = _TYPE_WORDS[kind]
        msg = f"must be {wanted}, not {_kind(value)} {show(value)}{_yaml_hint(value, wanted)}"
        if value is None:
            msg = f"must be {wanted}, not null (remove the key to use the default)"
    elif kind == "string_pattern_mismatch":
        msg = f"{show(value)} is not allowed here; it must match {ctx['pattern']}"
        if "[key]" in err["loc"]:
            msg = f"the name {show(value)} is not allowed; it must match {ctx['pattern']}"
    elif kind == "string_too_long":
        msg = f"{show(value)} is too long; at most {ctx['max_length']} characters"
    elif kind == "literal_error":
        msg = f"{show(value)} is not allowed; allowed: {ctx['expected']}{_yaml_hint(value, 'a string')}"
    elif kind == "extra_forbidden":
        model = model_at(root, loc[:-1]) if loc else None
        msg = "unknown key (check its spelling)" + (f"; allowed: {allowed_keys(model)}" if model else "")
    elif kind == "missing":
        msg = "required"
    elif kind in ("greater_than_equal", "greater_than"):
        msg = f"{show(value)} is too small; at least {ctx.get('ge', ctx.get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        msg = f"{show(value)} is too large; at most {ctx.get('le', ctx.get('lt'))}"
    elif kind == "too_short":
        msg = f"needs at least {ctx['min_length']} item(s)"
    elif kind == "too_long":
        msg = f"has {ctx['actual_length']} items; at most {ctx['max_length']}"
    elif kind == "value_error":
        why = str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
        msg = why if why.startswith(show(value)) or isinstance(value, (dict, list)) else f"{show(value)}: {why}"
    else:
        msg = err["msg"]
    return f"{format_path(loc)}: {msg}"

"""Read a stack's configuration from its files the way the Pulumi CLI does.

Project-level values in ``Pulumi.yaml`` (``config:``, unqualified keys belong to
the project) come first, then ``Pulumi.<stack>.yaml`` overrides them. Secrets
(``{secure: v1:...}``) cannot be decrypted without the CLI; they are replaced by
a placeholder and reported in ``secret_keys``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_DECLARATION_KEYS = {"type", "description", "default", "secret", "items", "value"}
SECRET_PLACEHOLDER = "[secret]"


class StackFileError(Exception):
    """A stack file that cannot be read: one line per problem, each naming the file."""

    def __init__(self, lines: str | list[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key defined twice in one mapping is recorded, not silently replaced."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the mapping constructor reports it
            line = key_node.start_mark.line + 1
            if first is not None:
                self.duplicates.append(
                    (line, f"line {line}: the key {key!r} is defined twice (first on line {first}); the second would silently replace the first")
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class StackFiles:
    project: str
    stack: str
    config: dict[str, Any]
    secret_keys: tuple[str, ...] = field(default=())


def read_stack(project_dir: Path, stack: str, stack_file: Path | None = None) -> StackFiles:
    """The merged config of ``stack`` (``stack_file`` overrides the default path)."""
    project_file = project_dir / "Pulumi.yaml"
    project_doc = _load(project_file)
    project = project_doc.get("name")
    if not isinstance(project, str):
        raise StackFileError(f"{project_file.name}: no project 'name'")

    merged: dict[str, Any] = {}
    for key, value in _config_section(project_doc, project_file).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and value and set(value) <= _DECLARATION_KEYS:
            if "value" in value:
                merged[full] = value["value"]
            elif "default" in value:
                merged[full] = value["default"]
        else:
            merged[full] = value

    path = stack_file or project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"{path.name}: no such stack file; stacks here: {', '.join(known) or 'none'}")
    secrets = []
    for key, value in _config_section(_load(path), path).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets.append(full)
            value = SECRET_PLACEHOLDER
        merged[full] = value
    return StackFiles(project=project, stack=stack, config=merged, secret_keys=tuple(sorted(secrets)))


def _config_section(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    section = doc.get("config")
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise StackFileError(f"{path.name}: config: must be a mapping of config keys to values, not {type(section).__name__}")
    bad = [k for k in section if not isinstance(k, str)]
    if bad:
        raise StackFileError(
            [f"{path.name}: config: the key {k!r} must be a string like zero-trust-aks:workloads" for k in bad]
        )
    return section


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StackFileError(f"{path.name}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StackFileError(f"{path.name}: cannot be read ({e})") from None
    loader = _StrictLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(e, "problem", None)
        raise StackFileError(f"{path.name}: not valid YAML{where}" + (f": {problem}" if problem else "")) from None
    except RecursionError:
        raise StackFileError(f"{path.name}: nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer of thousands of digits
        raise StackFileError(f"{path.name}: a value cannot be read ({str(e).split(':')[0]})") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise StackFileError([f"{path.name} {d}" for _, d in sorted(set(loader.duplicates))])
    if not isinstance(doc, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return doc

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
    """A stack file that cannot be read: one line naming the file."""


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
    for key, value in (project_doc.get("config") or {}).items():
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
    for key, value in ((_load(path).get("config")) or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets.append(full)
            value = SECRET_PLACEHOLDER
        merged[full] = value
    return StackFiles(project=project, stack=stack, config=merged, secret_keys=tuple(sorted(secrets)))


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StackFileError(f"{path.name}: not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise StackFileError(f"{path.name}: not valid YAML{where}") from None
    if not isinstance(doc, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return doc

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
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")
"""The keys of a stack settings file (Pulumi's stack settings file reference)."""


class YamlFloat(float):
    """A number YAML read as a fraction, with the text it was written as (``1.30`` is 1.3 to YAML):
    so a message can tell the user exactly what to quote."""

    text: str

    def __new__(cls, value: float, text: str):
        out = super().__new__(cls, value)
        out.text = text
        return out


class StackFileError(Exception):
    """A stack file that cannot be read: one line per problem, each naming the file."""

    def __init__(self, lines: str | list[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class _Strict:
    """What the stack file's loaders add to PyYAML's safe constructor: a key defined twice in one mapping is
    recorded, not silently replaced, and a fraction keeps the text it was written as."""

    duplicates: list[tuple[int, str]]

    def construct_yaml_float(self, node):
        return YamlFloat(yaml.constructor.SafeConstructor.construct_yaml_float(self, node), node.value)

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
        return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)


class _StrictLoader(_Strict, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader, strict (``_Strict``): its error words are the ones ``yaml_problem`` knows."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates = []


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)

if hasattr(yaml, "CSafeLoader"):

    class _FastStrictLoader(_Strict, yaml.CSafeLoader):
        """The same over libyaml's parser: a large stack file reads several times faster. A file it refuses is
        read again by ``_StrictLoader``, so problems are said in the same words."""

        def __init__(self, stream):
            super().__init__(stream)
            self.duplicates = []

    _FastStrictLoader.add_constructor("tag:yaml.org,2002:float", _FastStrictLoader.construct_yaml_float)
else:  # PyYAML built without libyaml
    _FastStrictLoader = _StrictLoader  # type: ignore[misc]


@dataclass(frozen=True)
class StackFiles:
    project: str
    stack: str
    config: dict[str, Any]
    secret_keys: tuple[str, ...] = field(default=())
    problems: tuple[str, ...] = field(default=())
    ciphertexts: dict[str, str] = field(default_factory=dict)
    """Each secret's ciphertext as the file holds it: not readable, but a changed secret shows as changed."""
    """What is wrong with the files beside the config's values (a key defined twice, a key outside ``config:``):
    reported with the config's own problems, all at once."""


def read_stack(project_dir: Path, stack: str, stack_file: Path | None = None) -> StackFiles:
    """The merged config of ``stack`` (``stack_file`` overrides the default path)."""
    project_file = project_dir / "Pulumi.yaml"
    project_doc = _load(project_file)
    project = project_doc.get("name")
    if not isinstance(project, str):
        raise StackFileError(f"{project_file.name}: no project 'name'")

    problems: list[str] = []
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
    ciphertexts: dict[str, str] = {}
    doc = _load(path, problems)
    for key in doc:
        if key in STACK_FILE_KEYS:
            continue
        if isinstance(key, str) and ":" in key:
            problems.append(f"{path.name}: {key!r} is at the top level, outside config:, where Pulumi ignores it; indent it under config:")
        else:
            problems.append(f"{path.name}: {key!r} is not a stack settings key; a stack file has {', '.join(STACK_FILE_KEYS)}")
    for key, value in _config_section(doc, path).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            secrets.append(full)
            ciphertexts[full] = str(value["secure"])
            value = SECRET_PLACEHOLDER
        merged[full] = value
    return StackFiles(project, stack, merged, tuple(sorted(secrets)), tuple(problems), ciphertexts)


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


_YAML_PROBLEMS = (
    ("expected <block end>, but found '-'", "a list item ('-') where the lines above expect a key: indent it under its key"),
    ("expected <block end>, but found '<block sequence start>'", "a list item ('-') where the lines above expect a key: indent it under its key"),
    ("expected <block end>", "this line's indentation does not fit the block above it: indent it like its siblings"),
    ("mapping values are not allowed here", "a ':' where a value was expected: quote the value if it holds ': ', or check this line's indentation"),
    ("could not find expected ':'", "a key without its ':' (or a value that runs on over several lines without quotes)"),
    ("that cannot start any token", "a tab or a character that cannot start a value: YAML indents with spaces only; quote values that start with '@' or '`'"),
    ("found unexpected end of stream", "a quote that is never closed"),
    ("but found '<stream end>'", "the file ends where a value was expected: a [...] or {...} that is never closed"),
    ("found undefined alias", "an alias (*name) with no anchor (&name) before it"),
    ("did not find expected key", "a key was expected here: check the indentation, or a '-' list item inside a mapping"),
    ("did not find expected '-' indicator", "a list item ('- ...') was expected here: check the indentation"),
    ("did not find expected node content", "a value is missing here"),
    ("expected ',' or ']'", "a list in [...] that is not closed, or items without ',' between them"),
    ("expected ',' or '}'", "a mapping in {...} that is not closed, or entries without ',' between them"),
    ("found duplicate anchor", "the same anchor (&name) twice"),
)
"""PyYAML's problem -> what it usually means, in our words."""


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML syntax error as one line: where, what it usually means, and the parser's own words."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = str(getattr(e, "problem", None) or e).strip()
    words = next((w for p, w in _YAML_PROBLEMS if p in problem), None)
    return f"not valid YAML at {where}{words} (the parser: {problem})" if words else f"not valid YAML at {where}{problem}"


def _load(path: Path, problems: list[str] | None = None) -> dict[str, Any]:
    """The file's mapping; a key defined twice goes to ``problems`` (raised at once without a list to collect it)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise StackFileError(f"{path.name}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StackFileError(f"{path.name}: cannot be read ({e})") from None
    loader = _FastStrictLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.YAMLError:
        loader.dispose()
        loader = _StrictLoader(text)  # the pure-Python parser says what is wrong in the words yaml_problem knows
        try:
            doc = loader.get_single_data()
        except yaml.YAMLError as e:
            raise StackFileError(f"{path.name}: {yaml_problem(e)}") from None
    except RecursionError:
        raise StackFileError(f"{path.name}: nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer of thousands of digits
        raise StackFileError(f"{path.name}: a value cannot be read ({str(e).split(':')[0]})") from None
    finally:
        loader.dispose()
    duplicates = [f"{path.name} {d}" for _, d in sorted(set(loader.duplicates))]
    if duplicates and problems is None:
        raise StackFileError(duplicates)
    if problems is not None:
        problems += duplicates
    if not isinstance(doc, dict):
        raise StackFileError(f"{path.name}: expected a mapping at the top level")
    return doc

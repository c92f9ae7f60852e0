"""The house rules that keep the core pure and the components thin."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from zerotrust.mockrun import PROJECT_DIR


def test_the_policies_core_never_imports_pulumi():
    code = (
        "import sys, pkgutil, importlib, policies\n"
        "for m in pkgutil.walk_packages(policies.__path__, 'policies.'): importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0].startswith('pulumi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_each_component_module_defines_one_component_with_a_project_type_token():
    found = []
    for path in sorted((PROJECT_DIR / "components").glob("*.py")):
        tree = ast.parse(path.read_text())
        components = [
            n for n in tree.body if isinstance(n, ast.ClassDef) and any(getattr(b, "attr", "") == "ComponentResource" for b in n.bases)
        ]
        assert len(components) <= 1, path.name
        for cls in components:
            source = ast.get_source_segment(path.read_text(), cls)
            assert '"zero-trust-aks:' in source and f':{cls.name}"' in source, cls.name
            assert "self.register_outputs(" in source, cls.name
            found.append(cls.name)
    assert sorted(found) == ["AksCluster", "ConnectivityProbes", "ExistingCluster", "ResourceGroup", "ZeroTrustNamespace"]


def test_main_reads_config_once_and_components_never_read_config():
    main = (PROJECT_DIR / "__main__.py").read_text()
    assert main.count("load_config(") == 1
    for path in (PROJECT_DIR / "components").glob("*.py"):
        assert "pulumi.Config(" not in path.read_text(), path.name


SOURCES = sorted(
    [p for d in ("policies", "components", "zerotrust", "guardrails", "benchmarks") for p in (PROJECT_DIR / d).rglob("*.py")]
    + [PROJECT_DIR / "__main__.py"]
)


def lines_matching(pattern: str, *except_in: str) -> list[str]:
    rx = re.compile(pattern)
    return [
        f"{path.relative_to(PROJECT_DIR)}:{n}"
        for path in SOURCES
        if path.relative_to(PROJECT_DIR).as_posix() not in except_in
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if rx.search(line)
    ]


def test_cilium_version_facts_are_written_only_in_the_version_table():
    assert lines_matching(r"\(1,\s*1\d\)", "policies/cilium_versions.py") == []


def test_acns_levels_are_written_only_in_their_table():
    # Hubble's flow type "L7" (a record of the L7 proxy) is another fact, written once in the Hubble reader.
    assert lines_matching(r"""["'](FQDN|L7)["']""", "policies/acns_levels.py", "policies/observed/hubble.py") == []


def test_the_stranger_is_spelled_in_one_place():
    # a literal "stranger", "stranger@..." or "stranger-..." anywhere but the identity module (names in __all__ aside)
    assert lines_matching(r"""["']stranger(?:[@-]|["'](?!,$))""", "policies/verdict/identity.py") == []


def test_pod_templates_are_read_in_one_place():
    assert lines_matching(r"def pod_template\(|POD_TEMPLATE_KINDS = ", "policies/render/podspec.py") == []


def test_each_version_and_level_fact_is_importable_from_its_one_table():
    from policies import acns_levels, cilium_versions

    assert cilium_versions.features(cilium_versions.DEFAULT_CILIUM).rejects_empty_rules
    assert acns_levels.BY_SETTING["l7"].allows == {"fqdn", "l7"}


MODULE_LIMIT = 420
"""About 400 lines: a module longer than that becomes a package whose file names say what they hold."""


def test_no_module_of_the_program_grows_past_about_four_hundred_lines():
    long = {p.relative_to(PROJECT_DIR).as_posix(): n for p in SOURCES if (n := len(p.read_text().splitlines())) > MODULE_LIMIT}
    assert long == {}


LAYERS = {
    "policies.cilium_versions": 0, "policies.acns_levels": 0, "policies.agent_settings": 0, "policies.memo": 0,
    "policies.config": 1,
    "policies.verdict": 2, "policies.render": 2,
    "policies.analysis": 3, "policies.guardrails": 3, "policies.observed": 4,
}
"""The core's packages in the order data flows: tables, the model (config), the engine and rendering, the
analyses and guardrails, the observed traffic. A package may import its own layer or lower ones only."""


def test_imports_in_the_core_run_one_way():
    def layer(module: str) -> tuple[str, int] | None:
        for name, n in LAYERS.items():
            if module == name or module.startswith(name + "."):
                return name, n
        return None

    backwards = []
    for path in sorted((PROJECT_DIR / "policies").rglob("*.py")):
        module = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts).removesuffix(".__init__")
        own = layer(module)
        if own is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                other = layer(node.module)
                if other and other[1] > own[1]:
                    backwards.append(f"{module} imports {node.module}")
    assert backwards == []


def test_every_core_module_belongs_to_a_layer():
    modules = {".".join(p.relative_to(PROJECT_DIR).with_suffix("").parts) for p in (PROJECT_DIR / "policies").rglob("*.py")}
    orphans = {m for m in modules if m != "policies.__init__" and not any(m == n or m.startswith(n + ".") for n in LAYERS)}
    assert orphans == set()


def test_the_mutation_run_selects_every_test_file_named_for_a_module_it_mutates():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(PROJECT_DIR / "setup.cfg")
    selected = set(cfg["mutmut"]["pytest_add_cli_args_test_selection"].split())
    named = {f"tests/{p.name}" for pattern in ("test_verdict*.py", "test_observed*.py", "test_budget*.py")
             for p in (PROJECT_DIR / "tests").glob(pattern)}
    assert "tests/test_verdict_engine.py" in named
    assert named - selected == set()

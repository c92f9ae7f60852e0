"""The house rules that keep the core pure and the components thin."""

from __future__ import annotations

import ast
import subprocess
import sys

from zerotrust.mockrun import PROJECT_DIR


def test_the_policies_core_never_imports_pulumi():
    code = (
        "import sys, pkgutil, importlib, policies\n"
        "for m in pkgutil.iter_modules(policies.__path__): importlib.import_module('policies.' + m.name)\n"
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
    assert sorted(found) == ["AksCluster", "ConnectivityProbes", "ExistingCluster", "ResourceGroup", "Workload", "ZeroTrustNamespace"]


def test_main_reads_config_once_and_components_never_read_config():
    main = (PROJECT_DIR / "__main__.py").read_text()
    assert main.count("load_config(") == 1
    for path in (PROJECT_DIR / "components").glob("*.py"):
        assert "pulumi.Config(" not in path.read_text(), path.name

"""The package layout keeps its promises: a light SDK, one direction of imports, no shadowing."""

import importlib.metadata
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_sdk_install_does_not_pull_in_the_operator_stack():
    base = [r for r in importlib.metadata.requires("ferry") if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for r in base}
    assert names and not names & {"kopf", "kubernetes"}


def test_ferry_never_imports_the_operator_or_kubernetes():
    code = (
        "import pkgutil, importlib, sys, ferry\n"
        "for m in pkgutil.walk_packages(ferry.__path__, 'ferry.'): importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('kopf', 'kubernetes', 'ferry_operator')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_operator_folder_does_not_shadow_the_standard_library():
    result = subprocess.run([sys.executable, "-c", "import operator; print(operator.__file__)"],
                            cwd=REPO, capture_output=True, text=True, check=True)
    assert not result.stdout.strip().startswith(str(REPO))
    assert not (REPO / "operator" / "__init__.py").exists()

"""The package layout keeps its promises: a light SDK and no shadowing of the standard library.

(The direction of imports is checked in tests/runtime/test_init.py.)
"""

import importlib.metadata
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_sdk_install_does_not_pull_in_the_operator_stack():
    base = [r for r in importlib.metadata.requires("ferry") if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for r in base}
    assert names and not names & {"kopf", "kubernetes"}


def test_operator_folder_does_not_shadow_the_standard_library():
    result = subprocess.run([sys.executable, "-c", "import operator; print(operator.__file__)"],
                            cwd=REPO, capture_output=True, text=True, check=True)
    assert not result.stdout.strip().startswith(str(REPO))
    assert not (REPO / "operator" / "__init__.py").exists()

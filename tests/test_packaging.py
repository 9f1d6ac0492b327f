"""The package layout keeps its promises: a light SDK and no shadowing of the standard library.

(The direction of imports is checked in tests/runtime/test_init.py.)
"""

import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys
import tomllib

import ferry

REPO = pathlib.Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_sdk_install_does_not_pull_in_the_operator_stack():
    base = [r for r in importlib.metadata.requires(ferry.DISTRIBUTION) if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for r in base}
    assert names and not names & {"kopf", "kubernetes"}


def test_operator_folder_does_not_shadow_the_standard_library():
    result = subprocess.run([sys.executable, "-c", "import operator; print(operator.__file__)"],
                            cwd=REPO, capture_output=True, text=True, check=True)
    assert not result.stdout.strip().startswith(str(REPO))
    assert not (REPO / "operator" / "__init__.py").exists()


def test_the_distribution_is_ferrys_own_name_not_the_unrelated_ferry_on_pypi():
    """PyPI's ``ferry`` is a 2014 project about Docker environments: ``pip install ferry`` installs
    it, not us. The name the code gives users is the one pyproject.toml builds."""
    assert PROJECT["name"] == ferry.DISTRIBUTION != "ferry"
    assert ferry.__version__ == importlib.metadata.version(ferry.DISTRIBUTION) == PROJECT["version"]
    assert ferry.install_hint("ui") == f"pip install '{PROJECT['name']}[ui]'"
    assert set(PROJECT["optional-dependencies"]) >= {"ui", "gcs", "azure", "operator"}
    assert f'org.opencontainers.image.title="{ferry.DISTRIBUTION}"' in (REPO / "Dockerfile").read_text()


def _install_hints() -> list[tuple[str, str]]:
    """Every ``pip install <something>`` a user is told to run, in the code, the docs and the image."""
    files = [*REPO.glob("runtime/**/*.py"), *REPO.glob("ui/**/*.py"), *REPO.glob("operator/**/*.py"),
             *REPO.glob("docs/*.md"), *REPO.glob("helm/**/*.md"), *REPO.glob("helm/**/*.yaml"),
             REPO / "README.md", REPO / "Dockerfile"]
    hints = []
    for path in files:
        for match in re.finditer(r"pip install(?:\s+-\S+)*\s+(\S+)", path.read_text()):
            hints.append((f"{path.relative_to(REPO)}: {match.group(0)}", match.group(1).strip("'\"`);,")))
    return hints


def test_every_install_hint_names_the_projects_own_distribution():
    hints = _install_hints()
    assert any("README.md" in where for where, _ in hints) and any("runtime/" in where for where, _ in hints)
    for where, target in hints:
        if target.startswith((".", "$", "-", "{")):  # a checkout (-e .), a variable, a wheel folder
            continue
        name = re.split(r"[\[<>=!~ ]", target)[0]
        assert name != "ferry", f"{where} installs PyPI's unrelated 'ferry'"
        if name.startswith("ferry"):
            assert name == ferry.DISTRIBUTION, where


def test_the_hints_printed_at_run_time_name_the_projects_own_distribution(tmp_path):
    """The UI's missing-dependency message, run as a user would meet it (its libraries hidden)."""
    hide = tmp_path / "starlette"
    hide.mkdir()
    (hide / "__init__.py").write_text("raise ModuleNotFoundError('No module named starlette', name='starlette')")
    run = subprocess.run([sys.executable, "-m", "ferry", "ui", "--local-only"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=60)
    assert run.returncode != 0
    assert f"pip install '{ferry.DISTRIBUTION}[ui]'" in run.stderr, run.stderr

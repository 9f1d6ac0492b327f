"""The public entry point, and the layering rule: the SDK never imports the operator's world."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ferry


def test_public_names():
    assert sorted(ferry.__all__) == ferry.__all__
    assert all(hasattr(ferry, name) for name in ferry.__all__)
    assert {"File", "Directory", "Store", "Settings", "BlobRef", "to_blob", "from_blob"} <= set(ferry.__all__)


def imported_after(code: str) -> set[str]:
    run = f"import sys\n{code}\nprint(' '.join(sorted({{n.split('.')[0] for n in sys.modules}})))"
    return set(subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, check=True).stdout.split())


def test_sdk_never_imports_kubernetes_kopf_or_the_operator():
    everything = ("import importlib, pkgutil, ferry\n"
                  "for m in pkgutil.walk_packages(ferry.__path__, 'ferry.'): importlib.import_module(m.name)\n"
                  "import boto3, obstore  # what the S3 backend imports when it is used")
    imported = imported_after(everything)
    assert {"boto3", "obstore", "pydantic"} <= imported
    assert not {"kubernetes", "kopf", "ferry_operator"} & imported


def test_import_ferry_stays_light():
    assert not {"boto3", "obstore", "pydantic"} & imported_after("import ferry")
    assert "boto3" not in imported_after("import ferry\nferry.task")  # a task pays for the store only if it uses it


def test_public_names_load_on_first_use():
    assert set(ferry.__all__) <= set(dir(ferry))
    from ferry.data import store

    assert ferry.use_store is store.using and ferry.current_store is store.current
    assert ferry.data.__name__ == "ferry.data"  # the layers too, as subpackages


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["get", "--help"]])
def test_ferry_help_loads_no_pydantic(argv):
    """Help answers before any model is loaded: the commands import them when they run."""
    after_help = ("import contextlib, io\nfrom ferry import cli\n"
                  "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
                  f"    cli.main({argv!r})\n"
                  "assert 'usage: ferry' in out.getvalue()")
    imported = imported_after(after_help)
    assert "ferry" in imported and "pydantic" not in imported

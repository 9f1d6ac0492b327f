"""Ferry: move files, directories and assets between containerized tasks on Kubernetes.

This module is the SDK's single public entry point; everything else in the package is an
implementation detail.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

_EXPORTS = {
    "Asset": "values.assets", "AssetEntry": "values.assets", "asset": "values.assets",
    "BlobRef": "core.blobs", "Kind": "core.blobs",
    "ExecutionContext": "definitions.context", "current_context": "definitions.context",
    "Directory": "values.directories",
    "Drive": "values.drives",
    "IncompleteOutputError": "core.errors", "IntegrityError": "core.errors", "PathEscapeError": "core.errors",
    "ReadOnlyStoreError": "core.errors",
    "File": "values.files",
    "Manifest": "data.manifest",
    "ObjectStoreSensor": "definitions.plugins", "TaskPlugin": "definitions.plugins",
    "from_blob": "values.serialization", "to_blob": "values.serialization",
    "Settings": "data.settings",
    "Store": "data.store", "current_store": "data.store", "use_store": "data.store",
    "DefinitionError": "definitions.tasks", "map": "definitions.tasks", "task": "definitions.tasks",
    "Progress": "data.transfer",
    "workflow": "definitions.workflows",
}
_RENAMED = {"current_store": "current", "map": "mapped", "use_store": "using"}

DISTRIBUTION = "ferry-workflows"
"""The name Ferry is installed by (``pip install ferry-workflows``); the import package and the
command are ``ferry``. The distribution ``ferry`` on PyPI is an unrelated project."""


def install_hint(extra: str | None = None) -> str:
    """The command that installs Ferry, with an extra (``ui``, ``gcs``...): for error messages."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"

if TYPE_CHECKING:
    from ferry.values.assets import Asset, AssetEntry, asset
    from ferry.core.blobs import BlobRef, Kind
    from ferry.definitions.context import ExecutionContext, current_context
    from ferry.values.directories import Directory
    from ferry.values.drives import Drive
    from ferry.core.errors import IncompleteOutputError, IntegrityError, PathEscapeError, ReadOnlyStoreError
    from ferry.values.files import File
    from ferry.data.manifest import Manifest
    from ferry.definitions.plugins import ObjectStoreSensor, TaskPlugin
    from ferry.values.serialization import from_blob, to_blob
    from ferry.data.settings import Settings
    from ferry.data.store import Store, current as current_store, using as use_store
    from ferry.definitions.tasks import DefinitionError, mapped as map, task
    from ferry.data.transfer import Progress
    from ferry.definitions.workflows import workflow


def __getattr__(name: str):
    """The public names, each imported on first use: ``import ferry`` costs almost nothing, and a
    program pays only for what it touches (a task that never reads a file never imports the
    store's clients). Also ``ferry.__version__``, read from the package's metadata on first use,
    and submodules."""
    if name == "__version__":
        value = _installed_version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(f"ferry.{_EXPORTS[name]}"), _RENAMED.get(name, name))
    else:
        try:  # a submodule, as ``ferry.core`` or ``ferry.data``
            value = importlib.import_module(f"ferry.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"ferry.{name}":
                raise
            raise AttributeError(f"module 'ferry' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def _installed_version() -> str:
    """What ``importlib.metadata.version(DISTRIBUTION)`` gives, read where it is plain: in the first folder
    of ``sys.path`` holding Ferry's metadata, from the name of its ``ferry_workflows-<version>.dist-info``
    (as pip, wheels and editable installs write it) or the ``Version`` header of its egg-info's
    ``PKG-INFO`` (what ``pip install -e .`` leaves in a checkout). Importing importlib.metadata
    costs about 50 ms of CPU, as much as restoring 100 small files, and the S3 client's user agent
    names the version. Anything less plain (two candidates) is left to importlib.metadata."""
    for folder in sys.path:
        try:
            names = [name for name in os.listdir(folder or ".") if _names_ferry(name)]
        except OSError:
            continue
        if len(names) == 1 and names[0].endswith(".dist-info"):
            return names[0][:-len(".dist-info")].split("-")[1]
        if len(names) == 1 and names[0].endswith(".egg-info"):
            version = _egg_info_version(os.path.join(folder or ".", names[0]))
            if version:
                return version
        if names:
            break
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _names_ferry(name: str) -> bool:
    """Whether a folder of ``sys.path`` is Ferry's metadata: ``ferry_workflows-<version>.dist-info``,
    ``ferry_workflows.egg-info`` (installers spell the name with ``_``, older ones with ``-`` or ``.``)."""
    for suffix in (".dist-info", ".egg-info"):
        if name.endswith(suffix):
            project = name[:-len(suffix)].split("-")[0]
            return project.lower().replace(".", "_") == DISTRIBUTION.replace("-", "_")
    return False


def _egg_info_version(path: str) -> str | None:
    """The ``Version`` header of an egg-info (a folder holding ``PKG-INFO``, or that file itself)."""
    try:
        with open(os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path, encoding="utf-8") as headers:
            for line in headers:
                if not line.strip():  # the headers end at the first empty line
                    break
                if line.startswith("Version:"):
                    return line[len("Version:"):].strip()
    except OSError:
        pass
    return None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = sorted([*_EXPORTS, "__version__"])

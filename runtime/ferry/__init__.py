"""Ferry: move files, directories and assets between containerized tasks on Kubernetes.

This module is the SDK's single public entry point; everything else in the package is an
implementation detail.
"""

from ferry.assets import Asset, AssetEntry, asset
from ferry.blobs import BlobRef, Kind
from ferry.context import ExecutionContext, current_context
from ferry.directories import Directory
from ferry.drives import Drive
from ferry.errors import IncompleteOutputError, IntegrityError, PathEscapeError, ReadOnlyStoreError
from ferry.files import File
from ferry.manifest import Manifest
from ferry.plugins import ObjectStoreSensor, TaskPlugin
from ferry.serialization import from_blob, to_blob
from ferry.settings import Settings
from ferry.store import Store, current as current_store, using as use_store
from ferry.tasks import DefinitionError, task
from ferry.transfer import Progress
from ferry.workflows import workflow



def __getattr__(name: str):
    """``ferry.__version__``, read from the installed package's metadata on first use
    (``importlib.metadata`` costs ``import ferry`` about 25 ms otherwise)."""
    if name != "__version__":
        raise AttributeError(f"module 'ferry' has no attribute {name!r}")
    from importlib import metadata

    try:
        version = metadata.version("ferry")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "0.0.0"
    globals()["__version__"] = version
    return version

__all__ = [
    "Asset",
    "AssetEntry",
    "BlobRef",
    "DefinitionError",
    "Directory",
    "Drive",
    "ExecutionContext",
    "File",
    "IncompleteOutputError",
    "IntegrityError",
    "Kind",
    "Manifest",
    "ObjectStoreSensor",
    "PathEscapeError",
    "Progress",
    "ReadOnlyStoreError",
    "Settings",
    "Store",
    "TaskPlugin",
    "__version__",
    "asset",
    "current_context",
    "current_store",
    "from_blob",
    "task",
    "to_blob",
    "use_store",
    "workflow",
]

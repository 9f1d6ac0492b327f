"""Ferry: move files, directories and assets between containerized tasks on Kubernetes.

This module is the SDK's single public entry point; everything else in the package is an
implementation detail.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ferry")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]

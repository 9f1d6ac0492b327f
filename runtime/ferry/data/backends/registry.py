"""Which backend serves which URI scheme. Plugins can ``register`` more (Drive's ``ferry://``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ferry.core import uris
from ferry.data import settings as settings_
from ferry.data.backends import base

Factory = Callable[[settings_.Settings, str], base.Backend]
"""Makes a backend from the settings and the scheme it is asked for."""


def _local(settings: settings_.Settings, scheme: str) -> base.Backend:
    from ferry.data.backends import local
    return local.LocalBackend()


def _s3(settings: settings_.Settings, scheme: str) -> base.Backend:
    from ferry.data.backends import s3  # boto3 is slow to import; only pay for it when S3 is used
    return s3.S3Backend(settings)


def _http(settings: settings_.Settings, scheme: str) -> base.Backend:
    from ferry.data.backends import http
    return http.HttpBackend(settings.http_timeout)


def _fsspec(settings: settings_.Settings, scheme: str) -> base.Backend:
    from ferry.data.backends import cloud
    return cloud.FsspecBackend(scheme)


_factories: dict[str, Factory] = {
    "": _local, "file": _local, "s3": _s3, "http": _http, "https": _http,
    **dict.fromkeys(["gs", "gcs", "abfs", "abfss", "az"], _fsspec),
}


def register(schemes: Iterable[str], factory: Factory) -> None:
    """Serve ``schemes`` with backends made by ``factory`` (replacing any earlier one)."""
    for scheme in schemes:
        _factories[scheme.lower()] = factory


def create(uri: str, settings: settings_.Settings) -> base.Backend:
    scheme = uris.scheme(uri)
    try:
        factory = _factories[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in sorted(_factories) if s)
        raise ValueError(f"{uri}: no store for {scheme}:// URIs; use one of {known} or a local path") from None
    return factory(settings, scheme)

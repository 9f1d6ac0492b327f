"""Picking a backend by URI scheme."""

from __future__ import annotations

import pytest

import ferry
from ferry.data.backends import http, local, registry, s3


@pytest.mark.parametrize(("uri", "kind"), [("/plain/path", local.LocalBackend), ("file:///x", local.LocalBackend),
                                           ("s3://b/k", s3.S3Backend), ("https://h/x", http.HttpBackend),
                                           ("HTTP://h/x", http.HttpBackend)])
def test_scheme_picks_the_backend(uri, kind):
    assert isinstance(registry.create(uri, ferry.Settings()), kind)


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"no store for ftp:// URIs; use one of .*s3://"):
        registry.create("ftp://h/x", ferry.Settings())


def test_register_adds_a_scheme_and_the_store_keeps_one_backend_per_scheme(monkeypatch):
    monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    made = []
    registry.register(["Custom"], lambda settings, scheme: made.append(scheme) or local.LocalBackend())
    store = ferry.Store(ferry.Settings())
    assert store.backend("custom://a") is store.backend("custom://b") and made == ["custom"]

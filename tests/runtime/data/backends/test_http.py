"""Read-only http(s) sources and index pages, served by the standard library on loopback."""

from __future__ import annotations

import pytest

import ferry
from ferry.data.backends import http

APACHE_INDEX = """<html><body><h1>Index of /~u/data/csv</h1>
<a href="?C=N;O=D">Name</a> <a href="/~u/data/">Parent Directory</a>
<a href="addresses.csv">addresses.csv</a> <a href="b%20c.csv">b c.csv</a> <a href="#top">top</a>
<a href="sub/">sub/</a> <a href="https://elsewhere.example/x.csv">mirror</a> <a href="addresses.csv">dup</a>
<a>no href</a></body></html>"""


def test_index_links_keep_only_what_is_below_the_directory():
    base = "https://h/~u/data/csv/"
    assert http.index_links(APACHE_INDEX, base, base) == [base + "addresses.csv", base + "b%20c.csv", base + "sub/"]


@pytest.fixture
def backend():
    return http.HttpBackend(timeout=5)


def test_list_walks_index_pages(http_root, backend):
    root, base = http_root
    (root / "d" / "sub dir").mkdir(parents=True)
    (root / "d" / "a.txt").write_text("a")
    (root / "d" / "sub dir" / "ü.txt").write_text("u")
    (root / "outside.txt").write_text("not listed")
    assert sorted(i.path for i in backend.list(base + "d")) == ["a.txt", "sub dir/ü.txt"]
    assert backend.stat(base + "d/a.txt").size == 1 and backend.stat(base + "d/missing") is None
    with backend.open(base + "d/sub%20dir/%C3%BC.txt") as stream:
        assert stream.read() == b"u"


def test_missing_urls(http_root, backend):
    root, base = http_root
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        backend.read_bytes(base + "missing.txt")
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        list(backend.list(base + "missing-dir"))


def test_writes_are_refused(backend, tmp_path):
    with pytest.raises(ferry.ReadOnlyStoreError, match="read-only"):
        backend.write_bytes("https://h/x", b"")
    with pytest.raises(ferry.ReadOnlyStoreError):
        backend.delete(["https://h/x"])


def test_unreachable_server_is_a_transient_error(backend):
    with pytest.raises(ConnectionError):
        backend.read_bytes("http://127.0.0.1:9/nothing")
    assert ConnectionError in backend.transient_errors


def test_http_file_downloads_through_the_store(http_root, local_store, tmp_path):
    root, base = http_root
    (root / "f.bin").write_bytes(b"\x00\x01")
    assert local_store.get(base + "f.bin", tmp_path / "f.bin").read_bytes() == b"\x00\x01"
    assert not local_store.manifest(base).files[0].sha256  # no manifest: paths only, nothing to verify against


def test_a_read_only_store_says_a_drive_cannot_claim_a_path_there():
    with pytest.raises(NotImplementedError, match=r"https://host/claim: .* a drive needs .* use a file://, s3://"):
        http.HttpBackend(timeout=5).put_if_absent("https://host/claim", b"{}")

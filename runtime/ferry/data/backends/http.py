"""Read-only ``http(s)://`` sources, with only the standard library.

A URL ending in ``/`` (or listed as a directory) is read as an index page, like the ones web
servers generate: its links below it are its files, and links ending in ``/`` are subdirectories.
"""

from __future__ import annotations

import html.parser
import http.client
import pathlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ferry.core import errors, uris
from ferry.data.backends import base


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def index_links(page: str, page_url: str, base_url: str) -> list[str]:
    """Absolute links of an index page that point below ``base_url``, without queries or fragments
    (sorting links, anchors) and without the page itself or anything above it."""
    parser = _Links()
    parser.feed(page)
    found: dict[str, None] = {}
    for href in parser.hrefs:
        url = urllib.parse.urljoin(page_url, href)
        parts = urllib.parse.urlsplit(url)
        if parts.query or parts.fragment or not url.startswith(base_url) or url.rstrip("/") == page_url.rstrip("/"):
            continue
        found[url] = None
    return list(found)


class HttpBackend(base.Backend):
    transient_errors = (*base.Backend.transient_errors, http.client.IncompleteRead)

    def __init__(self, timeout: float):
        self._timeout = timeout

    def _request(self, url: str, method: str = "GET") -> http.client.HTTPResponse:
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "ferry"})
        try:
            return urllib.request.urlopen(request, timeout=self._timeout)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code in (404, 410):
                raise FileNotFoundError(f"no object at {url} (HTTP {error.code})") from None
            if error.code >= 500 or error.code == 429:
                raise ConnectionError(f"{url}: HTTP {error.code} {error.reason}") from None
            raise OSError(f"{url}: HTTP {error.code} {error.reason}") from None
        except urllib.error.URLError as error:
            raise ConnectionError(f"{url}: {error.reason}") from None

    def stat(self, uri: str) -> base.ObjectInfo | None:
        try:
            with self._request(uri, "HEAD") as response:
                length = response.headers.get("Content-Length")
        except FileNotFoundError:
            return None
        return base.ObjectInfo(uris.basename(uri), int(length) if length else None)

    def list(self, uri: str) -> Iterator[base.ObjectInfo]:
        root = uris.as_directory(uri)
        pending, seen = [root], {root}
        while pending:
            page_url = pending.pop(0)
            with self._request(page_url) as response:
                if response.headers.get_content_type() != "text/html":
                    raise NotADirectoryError(f"{page_url} is not an HTML index page, so it cannot be listed")
                page = response.read().decode(response.headers.get_content_charset() or "utf-8", "replace")
            for url in index_links(page, page_url, root):
                if url.endswith("/"):
                    if url not in seen:
                        seen.add(url)
                        pending.append(url)
                else:
                    yield base.ObjectInfo(uris.relative(root, url), None)

    def open(self, uri: str) -> BinaryIO:
        return self._request(uri)

    def _read_only(self, uri: str) -> errors.ReadOnlyStoreError:
        return errors.ReadOnlyStoreError(f"{uri}: http(s) sources are read-only; write to the raw data store "
                                         f"or to an s3:// or file:// location instead")

    def upload(self, source: pathlib.Path, uri: str, on_bytes: base.OnBytes) -> None:
        raise self._read_only(uri)

    def write_bytes(self, uri: str, data: bytes) -> None:
        raise self._read_only(uri)

    def delete(self, uris_: Sequence[str]) -> None:
        raise self._read_only(uris_[0] if uris_ else "http(s)://")

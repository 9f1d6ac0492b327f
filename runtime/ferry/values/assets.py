"""Assets: named collections of files that a task publishes and later tasks restore, as in Coflux.

``ferry.asset(...)`` publishes files right away (so later changes to them do not leak in) to a
fresh location under the raw data prefix, laid out like a Directory: ``<uri>/<path>`` and the
manifest ``<uri>/.ferry-manifest.json``. It returns an ``Asset``: a thin reference (its blob
reference) that is safe to serialize and pass between tasks. Assets made from other assets, by
filtering or combining, are only a new manifest whose entries name the objects already stored:
nothing is downloaded or uploaded again.

Paths in an asset are relative to the base directory (``at=``, default: the current directory,
which is the task's working directory) or chosen explicitly with ``{"dest": source}``.
``restore()`` writes them under the current directory (or ``to=``), each file checked against
the manifest; no entry can land outside it (``..``, absolute paths and links are refused).
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Union

from ferry.core import errors
from ferry.data import blobs, manifest, store as store_
from ferry.values import serialization


class Asset(Mapping[str, "AssetEntry"]):
    """A published asset: a mapping of relative path to ``AssetEntry``. Holds only its blob
    reference; the manifest is read (and checked against the reference) on first use."""

    def __init__(self, ref: blobs.BlobRef):
        if ref.kind == blobs.Kind.FILE:
            raise ValueError(f"{ref.uri} is a file, not an asset; load it as a File")
        self._ref = ref
        self._contents: manifest.Manifest | None = None

    @classmethod
    def from_blob(cls, ref: blobs.BlobRef) -> Asset:
        return cls(ref)

    def to_blob(self, store: store_.Store | None = None) -> blobs.BlobRef:
        """The blob reference; an asset is published when it is made, so this does no I/O."""
        return self._ref

    @property
    def uri(self) -> str:
        return self._ref.uri

    def manifest(self) -> manifest.Manifest:
        if self._contents is None:
            self._contents = store_.current().manifest(self._ref)
        return self._contents

    def __getitem__(self, path: str) -> AssetEntry:
        entry = self.manifest().find(manifest.check_relpath(path))
        if entry is None:
            raise KeyError(f"{path!r} is not in the asset {self.uri}")
        return AssetEntry(self, entry)

    def __iter__(self) -> Iterator[str]:
        return (entry.path for entry in self.manifest().files)

    def __len__(self) -> int:
        return len(self.manifest().files)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and other._ref == self._ref

    def __hash__(self) -> int:
        return hash(self._ref.to_json())

    def __reduce__(self):
        return Asset, (self._ref,)

    def __repr__(self) -> str:
        return f"Asset({self.uri!r})"

    def restore(self, *, match: str | None = None, to: str | os.PathLike | None = None) -> dict[str, pathlib.Path]:
        """Download the files (those whose path matches the glob ``match``, when given) under ``to``
        (default: the current directory) at their paths in the asset, each verified; returns
        ``{path in the asset: local path}``."""
        if match is None:
            return self._restore(self.manifest().files, to)
        wanted = compile_glob(match).fullmatch
        if self._contents is not None:
            return self._restore([entry for entry in self._contents.files if wanted(entry.path)], to)
        # Not read yet: every entry is checked, but none becomes a model (nor is pydantic imported).
        return self._restore(store_.current().part(self._ref, wanted).files, to)

    def _restore(self, entries: list[manifest.Entry | manifest.StoredEntry], to: str | os.PathLike | None
                 ) -> dict[str, pathlib.Path]:
        """``entries`` (of this asset's checked manifest, so their paths are unique) under ``to``."""
        target = pathlib.Path.cwd() / (to if to is not None else "")
        store_.current().download_directory(self.uri, target, contents=manifest.Part(entries))
        return {entry.path: target / entry.path for entry in entries}

    def _stored(self, entry: manifest.Entry, path: str) -> manifest.Entry:
        """``entry`` renamed to ``path``, naming the object it is stored in."""
        return entry.model_copy(update={"path": path, "object": self.manifest().object_uri(self.uri, entry)})


class AssetEntry:
    """One file of an asset (``asset["path/to/file.txt"]``)."""

    def __init__(self, asset: Asset, entry: manifest.Entry):
        self.asset, self._entry = asset, entry

    @property
    def path(self) -> str:
        return self._entry.path

    @property
    def size(self) -> int | None:
        return self._entry.size

    def restore(self, *, to: str | os.PathLike | None = None) -> pathlib.Path:
        """Download just this file, verified, to ``<to or the current directory>/<path>``."""
        return self.asset._restore([self._entry], to)[self.path]

    def __repr__(self) -> str:
        return f"AssetEntry({self.asset.uri!r}, {self.path!r})"


Source = Union[str, os.PathLike, Asset, AssetEntry]
Entries = Union[None, Source, Sequence[Source], Mapping[str, Source]]
_Found = dict[str, Union[pathlib.Path, "manifest.Entry"]]
"""Path in the new asset → a local file to upload, or an entry stored already (with its ``object``)."""


def asset(entries: Entries = None, *, at: str | os.PathLike | None = None, match: str | None = None) -> Asset:
    """Publish an asset and return it; see the module docstring.

    - ``asset()``: every file under the base directory (``at=``, default: the current one);
    - ``asset("my_file.txt")``, ``asset(["first.txt", "second.txt"])``, ``asset("images")``: files or
      directories inside the base directory, at their paths relative to it;
    - ``asset({"img/1.jpg": "image.jpg", "css/default.css": "styles.css"})``: explicit entries;
    - ``asset(other, match="*.md")``, ``asset({"1": asset_1, "2": asset_2})``, ``{"x.txt": a["y.txt"]}``:
      from existing assets, without downloading or uploading them again;
    - ``match="**/*.{jpg,png}"``: keep only the paths that match (see ``compile_glob``).
    """
    base = pathlib.Path.cwd() / (at if at is not None else "")
    if not base.is_dir():
        raise NotADirectoryError(f"at={os.fspath(at)!r}: {base} is not a directory; at= names the base directory")
    found: _Found = {}
    if entries is None:
        _add_local(found, base, base, "")
    elif isinstance(entries, Mapping) and not isinstance(entries, Asset):
        for dest, source in entries.items():
            _add_source(found, source, base, manifest.check_relpath(dest))
    elif isinstance(entries, (list, tuple)):
        for source in entries:
            _add_source(found, source, base, None)
    else:
        _add_source(found, entries, base, None)
    if match is not None:
        wanted = compile_glob(match)
        found = {path: source for path, source in found.items() if wanted.fullmatch(path)}
    local = {path: source for path, source in found.items() if isinstance(source, pathlib.Path)}
    stored = [source for source in found.values() if isinstance(source, manifest.Entry)]
    return Asset(store_.current().upload_files(local, kind=blobs.Kind.ASSET, stored=stored))


def _add_source(found: _Found, source: Source, base: pathlib.Path, dest: str | None) -> None:
    """Add ``source`` at ``dest`` (a directory or an asset: under it), or by default at its own path."""
    if isinstance(source, Asset):
        for entry in source.manifest().files:
            _add(found, _join(dest, entry.path), source._stored(entry, _join(dest, entry.path)))
    elif isinstance(source, AssetEntry):
        path = dest or source.path
        _add(found, path, source.asset._stored(source._entry, path))
    elif isinstance(source, (str, os.PathLike)):
        path = base / source
        _add_local(found, path, base, dest if dest is not None else _inside(path, base))
    else:
        raise TypeError(f"cannot put a {type(source).__name__} in an asset; give a path, an Asset or an asset entry")


def _add_local(found: _Found, path: pathlib.Path, base: pathlib.Path, dest: str) -> None:
    if path.is_dir():
        # links are followed only while they stay inside ``path``; the task's downloads are left out
        files, _ = manifest.walk(path, store_.current().downloads)
        for file in files:
            _add(found, _join(dest, file.path), file.source)
    elif path.is_file():
        _add(found, dest, path)
    else:
        raise FileNotFoundError(f"{path}: no such file or directory to put in an asset (base directory: {base})")


def _inside(path: pathlib.Path, base: pathlib.Path) -> str:
    """The path of ``path`` relative to ``base``, which it must be inside, literally and after links."""
    relative = pathlib.Path(os.path.relpath(path, base)).as_posix()
    if relative.split("/")[0] == ".." or not path.resolve().is_relative_to(base.resolve()):
        raise errors.PathEscapeError(
            f"{path} is outside the base directory {base}: pass at= a directory that contains it, "
            f"or give it a path in the asset explicitly, e.g. asset({{'name.txt': {str(path)!r}}})")
    return "" if relative == "." else relative


def _join(dest: str | None, path: str) -> str:
    return f"{dest}/{path}" if dest else path


def _add(found: _Found, path: str, source: pathlib.Path | manifest.Entry) -> None:
    if path in found and found[path] != source:
        raise ValueError(f"two files would be {path!r} in the asset ({found[path]} and {source}); "
                         f"name one of them explicitly with {{'other/path': source}}")
    found[path] = source


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex that ``fullmatch``-es the relative paths the glob ``pattern`` selects.

    ``*`` is any run of characters but ``/``; ``?`` one of them; ``[a-z]`` and ``[!a-z]`` a class;
    ``**`` as a whole segment any number of directories (``**/*.md`` matches ``a.md`` and ``x/y/a.md``);
    ``{a,b}`` alternatives, which may nest and contain ``/`` and wildcards; ``\\`` escapes the next
    character. The whole path must match: ``*.md`` selects top-level files only.
    """
    return re.compile("|".join(f"(?:{_translate(p)})" for p in _expand_braces(pattern)), re.DOTALL)


def _expand_braces(pattern: str) -> list[str]:
    """``a{b,c{d,e}}f`` → ``["abf", "acdf", "acef"]`` (the first group, then the rest recursively)."""
    depth, start, commas, index = 0, 0, [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1
        elif char == "{":
            depth, start = depth + 1, index if depth == 0 else start
        elif char == "," and depth == 1:
            commas.append(index)
        elif char == "}" and depth:  # a '}' that closes nothing is an ordinary character
            depth -= 1
            if depth == 0:
                bounds = [start, *commas, index]
                alternatives = [pattern[a + 1:b] for a, b in zip(bounds, bounds[1:])]
                return [pattern[:start] + head + tail
                        for alternative in alternatives for head in _expand_braces(alternative)
                        for tail in _expand_braces(pattern[index + 1:])]
        index += 1
    if depth:
        raise ValueError(f"glob {pattern!r}: '{{' at {start} is never closed; escape it as '\\{{'")
    return [pattern]


def _translate(pattern: str) -> str:
    """The regex of a glob without braces."""
    segments = pattern.split("/")
    parts = []
    for number, segment in enumerate(segments, 1):
        last = number == len(segments)
        if segment == "**":
            parts.append(".*" if last else "(?:.*/)?")
        else:
            parts.append(_translate_segment(segment) + ("" if last else "/"))
    return "".join(parts)


def _translate_segment(segment: str) -> str:
    out, index = [], 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            while segment[index + 1:index + 2] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in segment[index + 2:]:
            end = segment.index("]", index + 2)
            body = segment[index + 1:end]
            negate = body[:1] in ("!", "^")
            body = "".join(c if c == "-" else re.escape(c) for c in body[negate:])
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            index = end
        elif char == "\\" and index + 1 < len(segment):
            index += 1
            out.append(re.escape(segment[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


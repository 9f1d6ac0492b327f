"""Manifests: the list of every file of a published directory, with its size, sha256 and mode.

A manifest is stored next to the files as ``.ferry-manifest.json`` and written last, so its
presence means the upload finished. Its digest (sha256 of the stored bytes) travels in the blob
reference, which pins the exact contents. An entry may name its own ``object`` URI, so a manifest
can list objects stored elsewhere (an asset made from other outputs without copying them), but
only in the manifest's own store: a task writes the manifests of its outputs, so an entry naming
``file:///proc/self/environ`` or another bucket would make the next reader fetch that in its own
container and pass it on. Reading a manifest (``parse``, ``part`` with ``base``) refuses it then
(``check_objects``). Paths are relative POSIX paths that can never leave the directory they are
restored into.

Reading a part of a large manifest (``parse`` with ``keep``: restoring ``match="d000/**"`` of an
asset) checks every entry as strictly, but with msgspec and a few scans of all paths and digests at
once, and makes models only of the entries kept: validating 10,000 models costs more than the rest
of such a restore. ``part`` makes no models at all, and restoring never imports pydantic unless the
manifest is malformed or loosely typed: the models (``Entry``, ``Manifest``) live in
``ferry.data.manifest_models``, imported on first use of ``manifest.Entry`` or ``manifest.Manifest``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import stat as stat_
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ferry.core import errors, localfiles, uris
from ferry.data.entries import StoredEntry, check_relpath, digest_of, is_utf8, object_uri

if TYPE_CHECKING:
    from ferry.data.manifest_models import Entry, Manifest

NAME = ".ferry-manifest.json"


_JOINED_UNCLEAN = ("\0/", "/\0", "//", "\0\0", "\0./", "/./", "/.\0", "\0.\0", "\0../", "/../", "/..\0", "\0..\0")
"""What paths joined by NUL contain where one is not clean: a leading or trailing '/', an empty
part or path, a '.' or '..' part."""


def all_clean(paths: list[str]) -> bool:
    """Whether ``check_relpath`` accepts each of ``paths``: the same rule, checked on them all at
    once, joined by NUL (which no clean path contains), in a few scans in C instead of a call each."""
    joined = "\0" + "\0".join(paths) + "\0"
    return not paths or (is_utf8(joined) and joined.count("\0") == len(paths) + 1
                         and not any(unclean in joined for unclean in _JOINED_UNCLEAN))


class StoredManifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int = 1
    files: list[StoredEntry] = []
    empty_directories: list[str] = []


_decoder = msgspec.json.Decoder(StoredManifest)


def _checked(data: bytes) -> StoredManifest | None:
    """``data`` decoded if it passes every check of the models (else None, without saying why)."""
    try:
        stored = _decoder.decode(data)
    except msgspec.MsgspecError:
        return None
    paths = [entry.path for entry in stored.files]
    digits = "".join(entry.sha256 for entry in stored.files if entry.sha256 is not None)
    if (all_clean(paths) and all_clean(stored.empty_directories) and len(set(paths)) == len(paths)
            and not digits.encode("utf-8", "surrogatepass").translate(None, b"0123456789abcdef")):  # only hex
        return stored
    return None


def parse(data: bytes, where: str, keep: Callable[[str], bool] | None = None, *, base: str | None = None,
          root: str | None = None) -> Manifest:
    """A stored manifest; a path in it that would escape raises PathEscapeError, anything else
    malformed IntegrityError. With ``keep``, only the files and empty directories whose path it
    accepts, every entry still checked as strictly (see the module docstring). With ``base`` (the
    directory it is stored at), an entry naming an object outside its store raises PathEscapeError
    (``check_objects``, with the store's raw data prefix ``root`` when known)."""
    if keep is None:
        whole = _validate(data, where)
        if base is not None:
            check_objects(whole.files, base, root, where)
        return whole
    kept = part(data, where, keep, base=base, root=root)
    models = _models()
    return models.Manifest.model_construct(
        version=kept.version, empty_directories=kept.empty_directories,
        files=[entry if isinstance(entry, models.Entry) else models.Entry.model_construct(**msgspec.structs.asdict(entry))
               for entry in kept.files])


@dataclasses.dataclass(frozen=True)
class Part:
    """The files and empty directories of a checked manifest that a restore wants, with no models:
    its entries are ``StoredEntry`` records, or ``Entry`` models where the models read the manifest
    (both have the fields a download reads)."""
    files: list[Any]
    empty_directories: list[str] = dataclasses.field(default_factory=list)
    version: int = 1


def part(data: bytes, where: str, keep: Callable[[str], bool], *, base: str | None = None,
         root: str | None = None) -> Part:
    """The entries of a stored manifest whose paths ``keep`` accepts, every entry checked as
    ``parse`` checks it, and raising as it does."""
    # where _checked refuses, the models say what is wrong (or take what is only loosely typed):
    stored: StoredManifest | Manifest = _checked(data) or _validate(data, where)
    if base is not None:
        check_objects(stored.files, base, root, where)  # every entry, kept or not, as its path
    return Part(files=[entry for entry in stored.files if keep(entry.path)],
                empty_directories=[path for path in stored.empty_directories if keep(path)], version=stored.version)


_Place = tuple[str, str, tuple[str, ...]]
"""A URI as (scheme, bucket or host, path segments), decoded where the scheme encodes."""


def _place(uri: str) -> _Place:
    text = uris.to_uri(uri)
    scheme = uris.scheme(text)
    authority, _, path = text.split("://", 1)[1].partition("/")
    if scheme in uris.ENCODED_SCHEMES:
        path = urllib.parse.unquote(path)  # as uris.local_path reads it: '%2e%2e' is '..', '%2F' a '/'
    if scheme == "file" and authority == "localhost":
        authority = ""
    return scheme, authority, tuple(segment for segment in path.split("/") if segment)


def store_area(base: str, root: str | None) -> tuple[str, _Place]:
    """Where the objects a manifest stored at ``base`` names must be (as text, and as a ``_Place``):
    under the store's raw data prefix ``root`` when ``base`` is in it; else in ``base``'s bucket (or
    host), or for ``file://``, which has no buckets, under ``base`` itself."""
    here = _place(base)
    if root is not None:
        top = _place(root)
        if here[:2] == top[:2] and here[2][:len(top[2])] == top[2]:
            return root, top
    if here[0] == "file":
        return base, here
    return f"{here[0]}://{here[1]}/", (here[0], here[1], ())


def check_objects(files: list[Any], base: str, root: str | None, where: str) -> None:
    """Refuse (PathEscapeError, naming the entry and why) a manifest stored at ``base`` whose entries
    name objects outside its own store: another scheme, bucket or host, a place outside ``store_area``
    (the raw data prefix ``root`` when known), or a path with '.' or '..' segments or a NUL."""
    named = [entry for entry in files if entry.object is not None]
    if not named:
        return
    area, top = store_area(base, root)
    fast = area.rstrip("/") + "/" if uris.scheme(area) not in uris.ENCODED_SCHEMES else None
    for entry in named:
        uri = entry.object
        if (fast is not None and uri.startswith(fast) and "\0" not in uri and "/./" not in uri
                and "/../" not in uri and not uri.endswith(("/.", "/.."))):
            continue  # what Ferry itself writes, decided without parsing
        reason = _why_outside(uri, top)
        if reason:
            raise errors.PathEscapeError(
                f"{where}: the entry {entry.path!r} names the object {uri!r}, outside this manifest's store "
                f"({area}): {reason}. An entry may name only an object of its own store (a task wrote this "
                f"manifest); publish the output again from the task that made it")


def _why_outside(uri: str, top: _Place) -> str | None:
    if not uris.is_uri(uri):
        return "it is not a URI"
    if "\0" in uri:
        return "it holds a NUL"
    scheme, authority, segments = place = _place(uri)
    raw_segments = uri.split("://", 1)[1].partition("/")[2].split("/")
    if {".", ".."} & ({*segments} | {*raw_segments}):
        return "'.' and '..' are refused in an object's path"
    if scheme != top[0]:
        return f"{scheme}:// is another store"
    if authority != top[1]:
        return f"{authority or 'this machine'!r} is another {'machine' if scheme == 'file' else 'bucket or host'}"
    if place[2][:len(top[2])] != top[2] or len(place[2]) == len(top[2]):
        return "it is not under that folder"
    return None


def _models():
    from ferry.data import manifest_models

    return manifest_models


def __getattr__(name: str) -> Any:
    """``Entry`` and ``Manifest``, from ``ferry.data.manifest_models`` (pydantic) on first use."""
    if name in ("Entry", "Manifest"):
        return getattr(_models(), name)
    raise AttributeError(f"module 'ferry.data.manifest' has no attribute {name!r}")


def _validate(data: bytes, where: str) -> Manifest:
    import pydantic

    try:
        return _models().Manifest.model_validate_json(data)
    except pydantic.ValidationError as error:
        for problem in error.errors():
            if isinstance(problem.get("ctx", {}).get("error"), errors.PathEscapeError):
                raise errors.PathEscapeError(f"{where}: {problem['ctx']['error']}") from None
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        raise errors.IntegrityError(where, "manifest", "a valid Ferry manifest", details) from None


@dataclasses.dataclass(frozen=True)
class LocalFile:
    """A file found in a local tree, before it is hashed."""
    path: str
    source: pathlib.Path
    size: int
    mode: int
    key: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    """What ``stat`` said when it was listed: size, mtime_ns, ctime_ns, inode, device (``hashcache``)."""


def walk(root: pathlib.Path, skip: pathlib.Path | None = None) -> tuple[list[LocalFile], list[str]]:
    """Every file and empty directory under ``root``, following links that stay inside it, but for
    the folder ``skip`` when it is inside (where a task's stored inputs were downloaded).

    A link is stored as what it points to; a link that escapes ``root``, dangles, or loops raises
    PathEscapeError naming it, and so does anything but a regular file or directory. Each file's
    ``source`` is its resolved path, which uploads open without following links. One ``scandir``
    per directory and one ``stat`` per entry: only links are resolved.
    """
    top = localfiles.check_tree_root(root)
    skipped = os.path.realpath(skip) if skip is not None else None
    files: list[LocalFile] = []
    empty: list[str] = []

    def visit(directory: str, real_directory: str, rel: str, ancestors: frozenset[str]) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        if not entries and rel:
            empty.append(rel)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            check_relpath(child)
            if child == NAME:
                raise errors.PathEscapeError(f"{entry.path}: {NAME} is reserved for Ferry's manifest; rename the file")
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not pathlib.Path(real).is_relative_to(top):
                    raise errors.PathEscapeError(
                        f"{entry.path} links to {real}, outside {top}: copy the target in or remove the link")
                try:
                    info = os.stat(real)
                except FileNotFoundError:
                    raise errors.PathEscapeError(f"{entry.path} is a broken link to {os.readlink(entry.path)}") from None
            else:
                real, info = os.path.join(real_directory, entry.name), entry.stat(follow_symlinks=False)
            if stat_.S_ISDIR(info.st_mode):
                if real == skipped:
                    continue
                if real in ancestors:
                    raise errors.PathEscapeError(f"{entry.path} links to its own ancestor {real}: remove the loop")
                visit(entry.path, real, child, ancestors | {real})
            else:
                localfiles.check_regular(entry.path, info)
                files.append(LocalFile(child, pathlib.Path(real), info.st_size, stat_.S_IMODE(info.st_mode) & 0o777,
                                       (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)))

    visit(str(top), str(top), "", frozenset({str(top)}))
    return files, empty


def destinations(root: pathlib.Path, paths: list[str]) -> list[str]:
    """``root/path`` for each of ``paths``, for a download, their parents created, after checking
    none can land outside ``root``: each path's text is checked, and so is every parent folder
    (once, however many files it holds), so a link already in the destination cannot redirect a
    write."""
    top = root.resolve()
    folders = {"": str(top)}
    if os.name == "nt":  # there a backslash separates and a colon names a drive or a stream: refuse both
        for path in paths:
            if "\\" in path or ":" in path:
                raise errors.PathEscapeError(f"{path!r} cannot be written on Windows, where '\\' and ':' "
                                             f"are not allowed in a file name; restore it on Linux or macOS")

    def folder(rel: str) -> str:
        if rel not in folders:
            parent, _, name = rel.rpartition("/")
            current = os.path.join(folder(parent), name)
            if os.path.islink(current) and not pathlib.Path(current).resolve().is_relative_to(top):
                raise errors.PathEscapeError(f"{rel}: {current} resolves outside {root}; remove the link there")
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            folders[rel] = current
        return folders[rel]

    found = []
    for path in paths:
        parent, _, name = check_relpath(path).rpartition("/")
        found.append(os.path.join(folder(parent), name))
    return found


def destination(root: pathlib.Path, path: str) -> pathlib.Path:
    """``root/path`` for a download, checked and its parents created as in ``destinations``."""
    return pathlib.Path(destinations(root, [path])[0])

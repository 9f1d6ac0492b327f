"""``list[ferry.File]`` and ``list[ferry.Directory]``: many blobs passed as one ``directory``.

The list is published as one directory whose manifest names each item by its index, zero-padded
to the width of the last one (``item_name``), so the manifest's path order is the list's order: a
file at ``<index>``, a directory's files under ``<index>/<path>`` (an empty one as an empty
directory, so that no index goes missing). An item already stored in the same store is referenced
by its object, never copied; a local one, or one stored elsewhere, is uploaded. That is also the
shape a map gathers its items' files and directories in, so a map's gathered output loads as a list.

Loading reads the manifest (checked against its digest) and nothing else: each File references its
object with its size and sha256, downloaded and verified only when read, as any stored File.
"""

from __future__ import annotations

import os
import pathlib
import typing
from typing import Any

from ferry.core import errors, uris
from ferry.data import blobs, manifest, store as store_
from ferry.values.directories import Directory
from ferry.values.files import File

ITEM_TYPES = (File, Directory)


def item_type(annotation: Any) -> type | None:
    """``File`` for ``list[File]``, ``Directory`` for ``list[Directory]``; None for anything else."""
    if typing.get_origin(annotation) is not list:
        return None
    args = typing.get_args(annotation)
    return args[0] if len(args) == 1 and args[0] in ITEM_TYPES else None


def item_name(index: int, count: int) -> str:
    """The path of item ``index`` of ``count``: zero-padded to the width of ``count - 1``, so that
    sorting the paths sorts the items (``07`` before ``10``)."""
    return str(index).zfill(len(str(max(count - 1, 0))))


def check(annotation: Any, value: Any) -> list | Directory:
    """``value`` as a list of the annotation's items; ``ValueError`` naming the first that is not one.
    A Directory passes as it is: it stands for the list of its files (or directories), as ``load``
    reads it (a directory on the command line, say)."""
    if isinstance(value, Directory):
        return value
    item = item_type(annotation)
    wanted = f"list[{item.__name__}]"
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected {wanted}, got {type(value).__name__} {value!r}")
    for index, element in enumerate(value):
        if not isinstance(element, item):
            raise ValueError(f"expected {wanted}, got {type(element).__name__} {element!r} at index {index}")
    return list(value)


def publish(annotation: Any, value: Any, store: store_.Store) -> blobs.BlobRef:
    """Publish the list as one directory at a fresh path of ``store`` (see the module docstring); a
    Directory as itself (published if local)."""
    items = check(annotation, value)
    if isinstance(items, Directory):
        return items.to_blob(store)
    uri = store.random_remote_path()
    local: dict[str, pathlib.Path] = {}
    stored: list[manifest.Entry] = []
    empty: list[str] = []
    for index, item in enumerate(items):
        name = item_name(index, len(items))
        if isinstance(item, File):
            entry = _referenced(item._ref, name, uri, store)
            if entry is not None:
                stored.append(entry)
            else:
                local[name] = item.download() if item.is_remote else item.path
        else:
            _add_directory(item, name, uri, store, local, stored, empty)
    return store.upload_files(local, uri, stored=stored, empty_directories=empty)


def _referenced(ref: blobs.BlobRef | None, path: str, uri: str, store: store_.Store,
                mode: int | None = None) -> manifest.Entry | None:
    """An entry at ``path`` naming the stored file ``ref``, or None where it cannot be referenced:
    its digests unknown (a URI given by hand), or outside the store, where readers of the
    directory at ``uri`` would refuse it (``manifest.check_objects``)."""
    if ref is None or ref.sha256 is None or ref.size is None:
        return None
    entry = manifest.Entry(path=path, size=ref.size, sha256=ref.sha256, object=ref.uri,
                           **({} if mode is None else {"mode": mode}))
    try:
        manifest.check_objects([entry], uri, store.raw_data_prefix, uri)
    except errors.PathEscapeError:
        return None
    return entry


def _add_directory(directory: Directory, name: str, uri: str, store: store_.Store, local: dict[str, pathlib.Path],
                   stored: list[manifest.Entry], empty: list[str]) -> None:
    """Put ``directory``'s files under ``name``: a stored one's by reference when all can be, else
    its files uploaded (downloaded first if stored elsewhere)."""
    if directory.is_remote:
        contents = directory.manifest()
        base = directory.remote_source
        entries = [_referenced(blobs.BlobRef(uri=contents.object_uri(base, e), kind=blobs.Kind.FILE, size=e.size,
                                             sha256=e.sha256), f"{name}/{e.path}", uri, store, e.mode)
                   for e in contents.files]
        if all(entries):
            stored += entries
            empty += [f"{name}/{path}" for path in contents.empty_directories]
            if not contents.files and not contents.empty_directories:
                empty.append(name)
            return
    root = directory.download()
    files, directories = manifest.walk(pathlib.Path(root), store.downloads)
    local.update({f"{name}/{file.path}": file.source for file in files})
    empty += [f"{name}/{path}" for path in directories]
    if not files and not directories:
        empty.append(name)


def load(annotation: Any, ref: blobs.BlobRef) -> list:
    """The list a directory stands for: its files in path order (``list[File]``), or its top-level
    directories (``list[Directory]``), each referencing its objects. Reads only the manifest."""
    directory = Directory.from_blob(ref)
    contents = directory.manifest()
    if item_type(annotation) is File:
        return [directory._file(entry) for entry in contents.files]
    top, _ = contents.children()
    if top:
        raise ValueError(f"{ref.uri} holds files at its top ({top[0].path}...), not only directories: take it as a "
                         f"ferry.Directory or list[ferry.File]")
    return [Directory._part(uris.join(ref.uri, name), part, directory, name)
            for name, part in _by_top_directory(ref.uri, contents)]


def _by_top_directory(base: str, contents: manifest.Manifest) -> list[tuple[str, manifest.Manifest]]:
    """Each top-level directory's part of ``contents`` (paths relative to it, objects kept where
    they are), in one pass: ``Manifest.subtree`` for each would read every entry per item."""
    files: dict[str, list[manifest.Entry]] = {}
    empty: dict[str, list[str]] = {}
    for entry in contents.files:
        head, _, rest = entry.path.partition("/")
        files.setdefault(head, []).append(entry.model_copy(update={"path": rest,
                                                                   "object": contents.object_uri(base, entry)}))
    for path in contents.empty_directories:
        head, _, rest = path.partition("/")
        empty.setdefault(head, [])
        files.setdefault(head, [])
        if rest:
            empty[head].append(rest)
    return [(name, manifest.Manifest.model_construct(version=contents.version, files=files[name],
                                                     empty_directories=empty.get(name, [])))
            for name in sorted(files)]

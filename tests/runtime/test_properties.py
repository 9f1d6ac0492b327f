"""Properties of paths, manifests and names, checked on generated input (Hypothesis): nothing is
ever written or read outside its folder, and a manifest that lies is caught."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import posixpath
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import ferry
from ferry.core import errors
from ferry.data import manifest
from ferry.values import drives

# Path parts as hostile input would have them: dots, slashes, backslashes, NUL, unicode, spaces.
PART = st.one_of(st.sampled_from(["..", ".", "", "a", "b c", "é", "\\", "..\\x", "\0", "~", "C:"]),
                 st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=8))
PATH = st.one_of(st.lists(PART, min_size=1, max_size=5).map("/".join),
                 st.text(max_size=20), st.lists(PART, min_size=1, max_size=4).map(lambda p: "/" + "/".join(p)))
SAFE_NAME = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N"], include_characters=" -_."),
                    min_size=1, max_size=12).filter(lambda n: n not in (".", "..") and not n.startswith(".ferry-")
                                                     and n != manifest.NAME)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _accepted(path: str) -> bool:
    try:
        manifest.check_relpath(path)
        return True
    except errors.PathEscapeError:
        return False


@SETTINGS
@given(PATH)
def test_an_accepted_path_never_leaves_its_folder(path):
    if _accepted(path):
        assert "\0" not in path and not path.startswith("/")  # a backslash is a name's character on POSIX
        normal = posixpath.normpath(posixpath.join("/root", path))
        assert normal.startswith("/root/") and normal == posixpath.join("/root", path)


@SETTINGS
@given(PATH)
def test_a_download_destination_stays_in_the_target_even_past_a_planted_link(path):
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = pathlib.Path(tmp, "target"), pathlib.Path(tmp, "outside")
        root.mkdir()
        outside.mkdir()
        (root / "a").symlink_to(outside, target_is_directory=True)  # left by an earlier download or a task
        try:
            destination = manifest.destination(root, path)
        except (errors.PathEscapeError, OSError):
            return
        assert os.path.realpath(destination.parent).startswith(os.path.realpath(root) + os.sep) or \
            os.path.realpath(destination.parent) == os.path.realpath(root)
        assert not any(outside.iterdir())


@SETTINGS
@given(PATH)
def test_the_fast_reader_takes_the_same_paths_as_the_models(path):
    data = json.dumps({"files": [{"path": path, "size": 0}], "empty_directories": [path]}).encode()
    try:
        parsed = manifest.parse(data, "m", keep=lambda path: True)
        assert _accepted(path) and parsed.files[0].path == parsed.empty_directories[0] == path
    except errors.PathEscapeError:
        assert not _accepted(path)


@SETTINGS
@given(st.lists(PATH, max_size=4))
def test_paths_are_all_clean_when_each_is(paths):
    assert manifest.all_clean(paths) == all(map(_accepted, paths))


@SETTINGS
@given(PATH)
def test_a_manifest_entry_or_drive_path_is_accepted_only_when_clean(path):
    clean = _accepted(path)
    try:
        manifest.Entry(path=path, size=0, sha256="0" * 64)
        assert clean
    except ValueError:
        assert not clean
    try:
        drives._check(path)
        assert clean and not any(part.startswith(drives.RESERVED) for part in path.split("/"))
    except ValueError:
        pass


@SETTINGS
@given(st.text(max_size=70))
def test_a_drive_name_is_one_safe_path_part(name):
    try:
        drive = ferry.Drive(drives.PROTOCOL + name)
    except ValueError:
        return
    assert "/" not in drive.name and drive.name not in (".", "..") and "\0" not in drive.name


@SETTINGS
@given(st.dictionaries(st.lists(SAFE_NAME, min_size=1, max_size=3).map("/".join), st.binary(max_size=64),
                       min_size=1, max_size=6))
def test_any_tree_of_safe_names_round_trips_byte_for_byte(files):
    paths = list(files)
    assume(not any(a != b and b.startswith(a + "/") for a in paths for b in paths))  # a file is no folder
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp, "tree")
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        store = ferry.Store(ferry.Settings(raw_data_prefix=pathlib.Path(tmp, "raw").as_uri()))
        ref = store.upload_directory(root)
        store.download_directory(ref, pathlib.Path(tmp, "back"))
        back = {p.relative_to(pathlib.Path(tmp, "back")).as_posix(): p.read_bytes()
                for p in pathlib.Path(tmp, "back").rglob("*") if p.is_file()}
        assert back == files


@pytest.mark.parametrize("lie", ["size", "sha256"])
@SETTINGS
@given(data=st.binary(min_size=1, max_size=256), other=st.binary(min_size=1, max_size=256))
def test_a_manifest_that_lies_about_a_file_is_caught_and_leaves_nothing(lie, data, other):
    assume(data != other)
    with tempfile.TemporaryDirectory() as tmp:
        store = ferry.Store(ferry.Settings(raw_data_prefix=pathlib.Path(tmp, "raw").as_uri()))
        (pathlib.Path(tmp, "tree")).mkdir()
        pathlib.Path(tmp, "tree", "f").write_bytes(data)
        ref = store.upload_directory(pathlib.Path(tmp, "tree"))
        real = store.manifest(ref).files[0]
        told = real.model_copy(update={"size": len(other)} if lie == "size" else
                               {"sha256": hashlib.sha256(other).hexdigest()})
        if told == real:
            return
        liar = manifest.Manifest(files=[told])
        target = pathlib.Path(tmp, "back")
        with pytest.raises(errors.IntegrityError):
            store.download_directory(ref.uri, target, contents=liar)
        assert not [p for p in target.rglob("*") if p.is_file()], "no file that looks right but is not"

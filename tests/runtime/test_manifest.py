"""Manifests: clean paths, walking local trees (links, empty dirs, modes), safe destinations."""

from __future__ import annotations

import pytest

import ferry
from ferry import errors, manifest


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/ü 😀.txt", "with space", ".hidden/x", "a..b"])
def test_clean_paths_pass(path):
    assert manifest.check_relpath(path) == path


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../../up", "a/./b", "a//b", "a/", ".", "..",
                                  "back\\slash", "C:/windows", "nul\0"])
def test_unclean_paths_are_refused(path):
    with pytest.raises(errors.PathEscapeError, match="not a clean relative path"):
        manifest.check_relpath(path)


def test_entry_model_refuses_escaping_paths():
    with pytest.raises(ValueError, match="not a clean relative path"):
        manifest.Entry(path="../x", size=1, sha256="0" * 64)


def test_walk_finds_files_links_and_empty_directories(tree):
    files, empty = manifest.walk(tree)
    by_path = {f.path: f for f in files}
    assert sorted(by_path) == ["a.txt", "empty.bin", "link-to-a", "linked-dir/données ü 😀.txt", "nested/b.csv",
                               "nested/deeper/données ü 😀.txt", "run.sh", "with space.txt"]
    assert by_path["link-to-a"].size == 5 and by_path["run.sh"].mode == 0o755
    assert empty == ["empty dir/also empty"]


def test_walk_rejects_links_that_escape(tmp_path, tree):
    (tree / "nested" / "out").symlink_to(tmp_path)
    with pytest.raises(errors.PathEscapeError, match=r"nested/out links to .*, outside .*tree: copy the target in"):
        manifest.walk(tree)


def test_walk_rejects_broken_links_and_loops(tree):
    (tree / "broken").symlink_to("missing")
    with pytest.raises(errors.PathEscapeError, match="broken link"):
        manifest.walk(tree)
    (tree / "broken").unlink()
    (tree / "nested" / "loop").symlink_to("..", target_is_directory=True)
    with pytest.raises(errors.PathEscapeError, match="its own ancestor"):
        manifest.walk(tree)


def test_walk_refuses_the_reserved_manifest_name(tree):
    (tree / manifest.NAME).write_text("{}")
    with pytest.raises(errors.PathEscapeError, match="reserved"):
        manifest.walk(tree)


def test_digest_is_stable_and_pins_content():
    entry = manifest.Entry(path="a", size=1, sha256="a" * 64)
    one = manifest.Manifest(files=[entry])
    assert one.digest() == manifest.Manifest.model_validate_json(one.to_bytes()).digest()
    assert one.digest() != manifest.Manifest(files=[entry.model_copy(update={"mode": 0o755})]).digest()


def test_duplicate_paths_are_refused():
    entry = manifest.Entry(path="a", size=1, sha256="a" * 64)
    with pytest.raises(ValueError, match="same path twice"):
        manifest.Manifest(files=[entry, entry])


def test_subtree_and_children_keep_objects_where_they_are():
    listed = manifest.Manifest(
        files=[manifest.Entry(path="top.txt", size=1), manifest.Entry(path="sub/x.csv", size=2),
               manifest.Entry(path="sub/deep/y", size=3, object="s3://elsewhere/y")],
        empty_directories=["sub/empty", "lonely"])
    files, directories = listed.children()
    assert [f.path for f in files] == ["top.txt"] and directories == ["lonely", "sub"]
    sub = listed.subtree("s3://b/dir", "sub")
    assert [(e.path, e.object) for e in sub.files] == [("x.csv", "s3://b/dir/sub/x.csv"), ("deep/y", "s3://elsewhere/y")]
    assert sub.empty_directories == ["empty"] and sub.size == 5


def test_parse_reports_malformed_manifests():
    with pytest.raises(ferry.IntegrityError, match="manifest mismatch.*files"):
        manifest.parse(b'{"files": "nope"}', "s3://b/d/.ferry-manifest.json")
    with pytest.raises(ferry.PathEscapeError, match="s3://b/d/.ferry-manifest.json: '../x'"):
        manifest.parse(b'{"files": [{"path": "../x", "size": 1}]}', "s3://b/d/.ferry-manifest.json")


def test_destination_refuses_escapes(tmp_path):
    assert manifest.destination(tmp_path, "a/b/c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
    assert (tmp_path / "a" / "b").is_dir()
    with pytest.raises(errors.PathEscapeError):
        manifest.destination(tmp_path, "../c.txt")
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(errors.PathEscapeError, match="resolves outside"):
        manifest.destination(tmp_path, "link/etc/x")

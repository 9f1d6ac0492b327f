"""Manifests: clean paths, walking local trees (links, empty dirs, modes), safe destinations."""

from __future__ import annotations

import json

import pytest

import ferry
from ferry.core import errors
from ferry.data import manifest


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/ü 😀.txt", "with space", ".hidden/x", "a..b", "back\\slash",
                                  "C:/windows", "c:", "a:b", "#x", "100%", "-rf", "new\nline", "...", "a\\..\\b"])
def test_clean_paths_pass(path):
    assert manifest.check_relpath(path) == path


@pytest.mark.parametrize("path", ["", "/abs", "../up", "a/../../up", "a/./b", "a//b", "a/", ".", "..",
                                  "nul\0", "a/../b", "./a", "a/."])
def test_unclean_paths_are_refused(path):
    with pytest.raises(errors.PathEscapeError, match="not a clean relative path"):
        manifest.check_relpath(path)


def test_a_name_that_is_not_utf8_is_refused():
    with pytest.raises(errors.PathEscapeError, match="not UTF-8"):
        manifest.check_relpath("caf\udce9.txt")
    assert not manifest.all_clean(["a", "caf\udce9.txt"])


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


WHERE = "s3://b/d/.ferry-manifest.json"
GOOD = {"path": "d000/a", "size": 1, "sha256": "a" * 64}


def _outcome(data: bytes, keep=None):
    """What ``parse`` makes of ``data``: the kept entries as plain data, or the error it raises."""
    try:
        parsed = manifest.parse(data, WHERE, keep)
    except (errors.PathEscapeError, errors.IntegrityError) as error:
        return type(error), str(error)
    return [entry.model_dump() for entry in parsed.files], parsed.empty_directories, parsed.version


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/ü 😀.txt", "with space", ".hidden/x", "a..b", "a\n", "..\n",
                                  "x/...", "1:x", "a:b", "", "/abs", "caf\udce9", "a\\b", "../up", "a/../../up", "a/./b", "a//b", "a/",
                                  ".", "..", "a/..", "back\\slash", "C:/windows", "c:", "nul\0", "x\n/.."])
def test_all_clean_is_check_relpath_on_each(path):
    try:
        clean = manifest.check_relpath(path) == path
    except errors.PathEscapeError:
        clean = False
    assert manifest.all_clean([path]) == clean
    assert manifest.all_clean(["a", path, "b/c"]) == manifest.all_clean([path, "a"]) == clean
    assert manifest.all_clean([]) and not manifest.all_clean(["a", ""]) and not manifest.all_clean(["a\0b"])


@pytest.mark.parametrize("files", [
    [{**GOOD, "path": "../x"}], [{**GOOD, "path": "d001/../../x"}], [{**GOOD, "path": "/abs"}],
    [{**GOOD, "path": "a//b"}], [{**GOOD, "path": "a/./w"}], [{**GOOD, "sha256": "A" * 64}],
    [{**GOOD, "sha256": "a" * 63}], [{**GOOD, "sha256": "a" * 64 + "\n"}], [{**GOOD, "sha256": "a" * 63 + "é"}],
    [{**GOOD, "sha256": "a" * 63 + "g"}], [{**GOOD, "sha256": "\0" + "a" * 63}], [{**GOOD, "size": -1}],
    [{**GOOD, "mode": 0o1000}], [{**GOOD, "mode": -1}], [{**GOOD, "extra": 1}], [{**GOOD, "object": 3}],
    [GOOD, GOOD], [{"size": 1}], ["d000/a"], "nope",
])
def test_reading_a_part_refuses_every_bad_entry_as_the_models_do(files):
    data = json.dumps({"files": [{**GOOD, "path": "d001/ok"}, *files] if isinstance(files, list) else files}).encode()
    refused = _outcome(data)
    assert refused[0] in (errors.PathEscapeError, errors.IntegrityError)  # by the models, naming the field
    assert _outcome(data, keep=lambda path: path.startswith("d001/")) == refused  # even when it is not kept


@pytest.mark.parametrize("data", [b"", b"[]", b'{"files": []} x', b'{"version": "one"}', b'{"other": 1}',
                                  b'{"empty_directories": ["../x"]}', b'{"files": [{"path": "a\\ud800"}]}', b"\xff"])
def test_reading_a_part_refuses_bad_documents_as_the_models_do(data):
    refused = _outcome(data)
    assert refused[0] in (errors.PathEscapeError, errors.IntegrityError)
    assert _outcome(data, keep=lambda path: True) == refused


def test_reading_a_part_makes_the_same_entries_as_reading_it_whole(monkeypatch):
    files = [{"path": "d000/a", "size": 1, "sha256": "a" * 64, "mode": 0o755}, {"path": "d000/b/c", "size": 0},
             {"path": "d001/x", "size": 2, "sha256": "b" * 64, "object": "s3://elsewhere/x"},
             {"path": "d000/loose", "size": "3", "mode": 420.0}]  # loosely typed: the models' reading applies
    validated, validate = [], manifest._validate
    monkeypatch.setattr(manifest, "_validate", lambda *args: validated.append(args) or validate(*args))
    for listed, models_used in ((files[:3], 0), (files, 1)):
        data = json.dumps({"files": listed, "empty_directories": ["d000/e", "d001/e"]}).encode()
        validated.clear()
        part = manifest.parse(data, WHERE, keep=lambda path: path.startswith("d000/"))
        assert len(validated) == models_used
        whole = manifest.parse(data, WHERE)
        assert part.files == [entry for entry in whole.files if entry.path.startswith("d000/")]
        assert part.empty_directories == ["d000/e"] and part.version == 1
        assert part.files[0].mode == 0o755 and part.files[1].sha256 is None
        assert manifest.Manifest(files=part.files).to_bytes() == manifest.Manifest.model_construct(
            files=part.files).to_bytes()


def test_destination_refuses_escapes(tmp_path):
    assert manifest.destination(tmp_path, "a/b/c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
    assert (tmp_path / "a" / "b").is_dir()
    with pytest.raises(errors.PathEscapeError):
        manifest.destination(tmp_path, "../c.txt")
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(errors.PathEscapeError, match="resolves outside"):
        manifest.destination(tmp_path, "link/etc/x")


class _Named:
    def __init__(self, obj: str, path: str = "x/keys.txt"):
        self.path, self.object = path, obj


@pytest.mark.parametrize("base, root, obj", [
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://b/ferry/ns/def/a b#%\\.txt"),
    ("s3://b/ferry/ns/abc", None, "s3://b/anything/else"),  # no prefix known: the same bucket
    ("s3://b/public/data", "s3://b/ferry/ns", "s3://b/other/x"),  # not under the prefix: the same bucket
    ("file:///srv/raw/abc", "file:///srv/raw", "file:///srv/raw/def/a%20b%23.txt"),
    ("file:///srv/raw/abc", "file:///srv/raw/", "file://localhost/srv/raw/def/x"),
    ("file:///data/set", "file:///srv/raw", "file:///data/set/deep/x"),  # outside the prefix: only below itself
    ("/srv/raw/abc", "/srv/raw", "file:///srv/raw/def/x"),
    ("https://h:8080/d", None, "https://h:8080/e/f"),
])
def test_objects_in_the_manifests_own_store_pass(base, root, obj):
    manifest.check_objects([_Named(obj), _Named(None, "plain")], base, root, "where")


@pytest.mark.parametrize("base, root, obj, why", [
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "file:///proc/self/environ", "file:// is another store"),
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://other/x", "'other' is another bucket"),
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://b/ferry/other-ns/x", "not under that folder"),
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://b/ferry/ns", "not under that folder"),
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://b/ferry/ns/../other-ns/x", "'.' and '..'"),
    ("s3://b/ferry/ns/abc", "s3://b/ferry/ns", "s3://b/ferry/ns/./x", "'.' and '..'"),
    ("s3://b/ferry/ns/abc", None, "s3://bb/x", "'bb' is another bucket"),
    ("s3://b/ferry/ns/abc", None, "S3://other/x", "another bucket"),
    ("s3://b/ferry/ns/abc", None, "/etc/passwd", "not a URI"),
    ("s3://b/ferry/ns/abc", None, "s3://b/x\0", "NUL"),
    ("file:///srv/raw/abc", "file:///srv/raw", "file:///srv/raw/abc/%2e%2e/%2E%2E/etc/passwd", "'.' and '..'"),
    ("file:///srv/raw/abc", "file:///srv/raw", "file:///srv/raw/abc/..%2F..%2Fetc", "'.' and '..'"),
    ("file:///srv/raw/abc", "file:///srv/raw", "file:///srv/rawx/y", "not under that folder"),
    ("file:///srv/raw/abc", "file:///srv/raw", "file://evil/srv/raw/x", "'evil' is another machine"),
    ("file:///data/set", "file:///srv/raw", "file:///srv/raw/x", "not under that folder"),
    ("https://h:8080/d", None, "https://h:8081/d/x", "another bucket or host"),
])
def test_objects_outside_the_manifests_own_store_are_refused(base, root, obj, why):
    with pytest.raises(errors.PathEscapeError, match=rf"where: the entry 'x/keys.txt' names the object .*{why}"):
        manifest.check_objects([_Named(obj)], base, root, "where")
    data = json.dumps({"files": [{"path": "x/keys.txt", "size": 1, "object": obj}]}).encode()
    for keep in (None, lambda path: False):  # refused even where the entry is not kept
        with pytest.raises(errors.PathEscapeError, match=why):
            manifest.parse(data, "where", keep, base=base, root=root)

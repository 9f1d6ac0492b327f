"""ferry.Directory, with every example of the FlyteDirectory seed."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

import ferry
from ferry.core import uris
from ferry.data import manifest
from tests.runtime.helpers import spy_on
from tests.runtime.values.test_files import other_pod


def seed_task1(working_directory: pathlib.Path, **kwargs) -> ferry.Directory:
    """The seed's ``task1``: two files in a new local directory, returned as a Directory."""
    p = os.path.join(working_directory, "my_new_directory")
    os.makedirs(p)
    with open(os.path.join(p, "file_1.txt"), "w") as file1:
        file1.write("This is file 1.")
    with open(os.path.join(p, "file_2.txt"), "w") as file2:
        file2.write("This is file 2.")
    return ferry.Directory(p, **kwargs)


def pass_between_tasks(value, store: ferry.Store, tmp_path: pathlib.Path):
    """What the engine does: the value leaves one pod as JSON and is rebuilt in the next one."""
    status = json.dumps({"outputs": {"fd": json.loads(ferry.to_blob(value).to_json())}})
    pod2 = other_pod(store, tmp_path)
    return ferry.from_blob(json.loads(status)["outputs"]["fd"]), pod2


def test_seed_local_directory_example(store, tmp_path):
    fd, pod2 = pass_between_tasks(seed_task1(tmp_path), store, tmp_path)
    with ferry.use_store(pod2):
        # the seed's task2
        assert fd.remote_source.startswith(store.raw_data_prefix)
        files = ferry.Directory.listdir(fd)  # Files that fetch nothing until opened
        assert [type(f) for f in files] == [ferry.File, ferry.File]
        assert not any(f.path.exists() for f in files)
        with open(files[0], mode="r") as f:
            assert f.read() == "This is file 1."
        assert files[0].path.exists() and not files[1].path.exists()

        items = os.listdir(fd)  # downloads the whole directory once
        assert sorted(items) == ["file_1.txt", "file_2.txt"] and type(items[0]) is str
        assert fd.path.is_relative_to(tmp_path / "pod2")


def test_seed_remote_directory_example_over_http(http_root, tmp_path, local_store):
    root, base = http_root
    (root / "data" / "csv" / "more data").mkdir(parents=True)
    (root / "data" / "csv" / "addresses.csv").write_text("John,Doe\n")
    (root / "data" / "csv" / "b c.csv").write_text("1,2\n")
    (root / "data" / "csv" / "more data" / "ü.csv").write_text("deep\n")

    with ferry.use_store(local_store):
        # task1: a remote directory passes by reference, nothing is uploaded
        fd, pod2 = pass_between_tasks(ferry.Directory(base + "data/csv/"), local_store, tmp_path)
        assert fd.remote_source == base + "data/csv/"
    with ferry.use_store(pod2):
        files = ferry.Directory.listdir(fd)  # task2
        assert [os.path.basename(f.remote_source) for f in files[:2]] == ["addresses.csv", "b%20c.csv"]
        with open(files[0], mode="r") as f:
            assert f.read() == "John,Doe\n"
        assert isinstance(files[2], ferry.Directory) and files[2].listdir()[0].open().read() == b"deep\n"
        assert fd.open("more data/ü.csv", "r").read() == "deep\n"
        local = fd.download()
        assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*.csv")) == \
            ["addresses.csv", "b c.csv", "more data/ü.csv"]


def test_http_directory_is_read_only(http_root, local_store):
    root, base = http_root
    with ferry.use_store(local_store), pytest.raises(ferry.ReadOnlyStoreError, match="read-only"):
        local_store.upload_file(__file__, base + "x.py")


def test_seed_remote_directory_override_and_rerun_overwrites(store, tmp_path):
    target = store.random_remote_path("foo/bar")
    fd, _ = pass_between_tasks(seed_task1(tmp_path / "run1", remote_directory=target), store, tmp_path)
    assert fd.remote_source == target
    assert sorted(store.list(target)) == ["file_1.txt", "file_2.txt"]

    run2 = seed_task1(tmp_path / "run2", remote_directory=target)
    (run2.path / "file_2.txt").write_text("This is file 2, again.")
    spy = spy_on(store)
    fd2, pod2 = pass_between_tasks(run2, store, tmp_path)
    assert fd2.remote_source == target and spy.uploads == [target + "/file_2.txt"]
    with ferry.use_store(pod2):
        assert fd2.open("file_2.txt", "r").read() == "This is file 2, again."


def test_seed_from_source_is_lazy(store, tmp_path):
    published = ferry.to_blob(seed_task1(tmp_path))
    spy = spy_on(store)
    fd = ferry.Directory.from_source(published.uri)
    assert fd.remote_source == published.uri and not fd.path.exists()
    assert ferry.to_blob(fd) == ferry.BlobRef(uri=published.uri, kind="directory") and spy.uploads == []
    assert not fd.path.exists()
    assert sorted(p.name for p in fd.download().iterdir()) == ["file_1.txt", "file_2.txt"]


def test_stream_one_file_of_a_large_directory(store, tmp_path):
    big = tmp_path / "big"
    (big / "sub").mkdir(parents=True)
    for i in range(50):
        (big / f"part-{i:02}.bin").write_bytes(os.urandom(1024))
    (big / "sub" / "x.csv").write_text("wanted\n")
    fd = ferry.from_blob(ferry.to_blob(ferry.Directory(big)))
    with fd.open("sub/x.csv", "r") as f:
        assert f.read() == "wanted\n"
    assert not fd.path.exists()  # nothing else was fetched
    with pytest.raises(FileNotFoundError, match="nope.csv is not in"):
        fd.open("nope.csv")
    with pytest.raises(ferry.PathEscapeError):
        fd.open("../../etc/passwd")


def test_subdirectory_from_listdir_travels_without_copying(store, tree, tmp_path):
    fd = ferry.from_blob(ferry.to_blob(ferry.Directory(tree)))
    nested = next(e for e in fd.listdir() if isinstance(e, ferry.Directory) and e.remote_source.endswith("/nested"))
    spy = spy_on(store)
    ref = ferry.to_blob(nested)  # a manifest of its own pointing at the same objects
    assert spy.uploads == [] and ref.file_count == 2 and ref.manifest_digest
    assert {e.object.rsplit("/", 2)[-2] for e in store.manifest(ref).files} <= {"nested", "deeper"}
    received, pod2 = pass_between_tasks(nested, store, tmp_path)
    with ferry.use_store(pod2):
        assert (received.download() / "deeper" / "données ü 😀.txt").read_text() == "unicode"


def test_directory_round_trip_keeps_modes_links_and_empty_dirs(store, tree, tmp_path):
    received, pod2 = pass_between_tasks(ferry.Directory(tree), store, tmp_path)
    with ferry.use_store(pod2):
        local = pathlib.Path(received)
    assert os.access(local / "run.sh", os.X_OK) and (local / "link-to-a").read_text() == "alpha"
    assert (local / "empty dir" / "also empty").is_dir() and (local / "empty.bin").stat().st_size == 0


def test_corrupt_directory_fails_loudly(store, tree, tmp_path):
    ref = ferry.to_blob(ferry.Directory(tree))
    uri = f"{ref.uri}/with space.txt"
    store.backend(uri).write_bytes(uri, b"spaceS")
    with pytest.raises(ferry.IntegrityError, match="with space.txt.*sha256 mismatch"):
        ferry.from_blob(ref).download()


def test_local_directory_listdir_and_file(tree):
    fd = ferry.Directory(tree)
    names = [os.path.basename(os.fspath(e.path)) for e in fd.listdir()]
    assert names == sorted(os.listdir(tree)) and fd.download() == tree
    assert fd.open("nested/b.csv", "r").read() == "x,y\n1,2\n"
    assert manifest.NAME not in names


POSIX_NAMES = ["back\\slash", "dir\\ish/inner\\file.txt", "with space.txt", " lead and trail ", "#hash", "100%",
               "%2F..%2Fnot-a-path", "ü 😀 données", "-leading-dash", "--", "C:drive", "a:b", "q?x=1&y=2",
               "+plus", "[x]{y}", "~tilde", "quote\"s'", "star*", "pipe|<>", "^caret`", "semi;colon,comma=",
               "...", "..x", "x..", ".hidden", "sub dir #1/file %41.txt",
               # control characters: legal in POSIX names and S3 keys, refused by obstore's paths
               "new\nline.txt", "tab\there", "carriage\rreturn\r\n", "bell\x07 esc\x1b \x01\x1f del\x7f",
               "dir\nwith newline/inner\ttab.txt", "trailing newline\n"]


def posix_tree(root: pathlib.Path) -> pathlib.Path:
    """Files named as POSIX and S3 allow: each holds its own name (as bytes: text mode would turn a
    carriage return into a newline)."""
    for name in POSIX_NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    return root


def read_names(files: dict[str, pathlib.Path]) -> dict[str, str]:
    """What each file holds, by its name."""
    return {name: path.read_bytes().decode() for name, path in files.items()}


def test_names_legal_in_posix_and_s3_keys_round_trip(store, tmp_path):
    """Issue 13: a file named ``back\\slash`` (or with spaces, '#', '%', unicode, a leading dash, a
    newline or another control character...) is a legal POSIX name and S3 key, so publishing it
    must not fail the task after its work."""
    tree = posix_tree(tmp_path / "tree")
    ref = ferry.to_blob(ferry.Directory(tree))
    assert sorted(entry.path for entry in store.manifest(ref).files) == sorted(POSIX_NAMES)
    received, pod2 = pass_between_tasks(ferry.from_blob(ref), store, tmp_path)
    with ferry.use_store(pod2):
        local = received.download()
        assert read_names({name: local / name for name in POSIX_NAMES}) == {name: name for name in POSIX_NAMES}
        assert received.open("back\\slash", "r").read() == "back\\slash"
        assert received.open("new\nline.txt", "rb").read() == b"new\nline.txt"
        assert ferry.from_blob(ref).file("dir\nwith newline/inner\ttab.txt").download().read_bytes() == (
            b"dir\nwith newline/inner\ttab.txt")
        assert ferry.from_blob(ref).file("sub dir #1/file %41.txt").download().read_text() == "sub dir #1/file %41.txt"
    listed = {uris.relative(ref.uri, uris.join(ref.uri, info.path)) for info in store.backend(ref.uri).list(ref.uri)}
    assert listed == {*POSIX_NAMES, manifest.NAME}  # stored under the very same keys, not re-encoded


@pytest.mark.parametrize("name", ["..", "."])
def test_unsafe_names_are_refused_with_the_name(name, tmp_path, local_store):
    with pytest.raises(ValueError, match="'..'|'.'"):
        ferry.Directory(tmp_path, remote_directory=f"{local_store.raw_data_prefix}/a/{name}/b")
    with pytest.raises(ValueError, match="'..'|'.'"):
        ferry.File(tmp_path / "x", remote_path=f"{local_store.raw_data_prefix}/a/{name}/b")


def test_a_name_that_is_not_utf8_is_refused_clearly(tmp_path, local_store):
    """POSIX allows any bytes but '/' and NUL; S3 keys and manifests are UTF-8, so such a name is
    refused with its path, not with an encoding error from deep inside the upload."""
    root = tmp_path / "tree"
    root.mkdir()
    try:
        (root / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1")
    except (UnicodeEncodeError, OSError):
        pytest.skip("this filesystem refuses names that are not UTF-8")
    with ferry.use_store(local_store), pytest.raises(ferry.PathEscapeError, match=r"caf\\udce9.txt.*UTF-8"):
        ferry.to_blob(ferry.Directory(root))


def test_files_listed_from_a_stored_directory_land_side_by_side(store, tree, tmp_path):
    """Issue 13: siblings stay siblings under the directory's local path, whether fetched one by
    one, through a subdirectory, by relative path, or after the whole directory."""
    received, pod2 = pass_between_tasks(ferry.Directory(tree), store, tmp_path)
    with ferry.use_store(pod2):
        top = {os.path.basename(e.path): e for e in received.listdir()}
        assert {name: e.path for name, e in top.items()} == {name: received.path / name for name in top}
        assert top["a.txt"].download().read_text() == "alpha"
        assert top["with space.txt"].download().parent == top["a.txt"].path.parent == received.path
        nested = top["nested"]
        deeper = {os.path.basename(e.path): e for e in nested.listdir()}["deeper"]
        assert deeper.path == received.path / "nested" / "deeper"
        assert deeper.listdir()[0].download() == received.path / "nested" / "deeper" / "données ü 😀.txt"
        assert received.file("nested/b.csv").download() == received.path / "nested" / "b.csv"
        assert sorted(os.listdir(received.path / "nested")) == ["b.csv", "deeper"]
        whole = received.download()
        assert whole == received.path and (whole / "run.sh").read_text().startswith("#!")
        again = received.listdir()  # after the whole download: the files are already in place
        assert all(pathlib.Path(e).exists() for e in again)


@ferry.task
def reads_a_directory(data: ferry.Directory) -> dict[str, object]:
    """Reads one file of a stored directory, downloads it whole, and publishes its working directory."""
    first = data.listdir()[0]
    text = first.open("r").read() if isinstance(first, ferry.File) else ""
    pathlib.Path(first).read_text()
    local = data.download()
    pathlib.Path("mine.txt").write_text("mine")
    made = ferry.asset()
    return {"text": text, "local": str(local), "cwd": os.getcwd(), "asset": sorted(made)}


@ferry.workflow
def read_a_directory(data: ferry.Directory) -> dict[str, object]:
    return reads_a_directory(data=data)


def test_downloads_in_a_task_go_under_its_working_directory_and_go_with_it(tmp_path):
    """Issue 13: a task's downloads are in its working directory (its scratch space on a cluster), not
    in a random folder under /tmp/ferry; they are removed when the task ends, and ``ferry.asset()``
    of the working directory does not collect them."""
    settings = ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(), cache_dir=tmp_path / "cache",
                              local_dir=tmp_path / "local-dir")
    with ferry.use_store(ferry.Store(settings)):
        ref = ferry.to_blob(seed_task1(tmp_path))
        seen = read_a_directory(data=ferry.Directory.from_blob(ref))
    assert seen["text"] == "This is file 1." and seen["asset"] == ["mine.txt"]
    assert pathlib.Path(seen["local"]).is_relative_to(seen["cwd"])
    assert not pathlib.Path(seen["local"]).exists()
    assert not (tmp_path / "local-dir").exists()

"""ferry.Drive, with every example of the Lightning seed, against the local store and S3."""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import socket
import threading
import time

import pytest

import ferry
from ferry.core import uris
from ferry.values import drives
from tests.runtime.values.test_files import other_pod


def task(tmp_path: pathlib.Path, monkeypatch, name: str, workflow: str = "app") -> pathlib.Path:
    """Act as task ``name`` of ``workflow``: its identity (as a task pod has it) and a fresh working directory."""
    monkeypatch.setenv("FERRY_WORKFLOW", workflow)
    monkeypatch.setenv("FERRY_TASK", name)
    root = tmp_path / f"{workflow}-{name}"
    root.mkdir()
    monkeypatch.chdir(root)
    return root


def objects(store: ferry.Store, drive: str) -> list[str]:
    return store.list(uris.join(store.raw_data_prefix, "drives", drive, "objects"))


def test_seed_drive_actions(store, tmp_path, monkeypatch):
    task(tmp_path, monkeypatch, "work")
    drive = ferry.Drive("ferry://drive")

    assert drive.list(".") == []  # Returns [] as empty
    with open("a.txt", "w") as f:
        f.write("Hello World !")
    drive.put("a.txt")
    assert drive.list(".") == ["a.txt"]
    root = uris.join(store.raw_data_prefix, "drives", "drive")
    assert sorted(store.list(root)) == ["files/a.txt/.ferry-claim", "files/a.txt/.ferry-copies/app%2Fwork",
                                        f"objects/{objects(store, 'drive')[0]}"]

    os.remove("a.txt")
    assert drive.get("a.txt") == pathlib.Path.cwd() / "a.txt"  # Get the file into the current worker
    assert pathlib.Path("a.txt").read_text() == "Hello World !"

    drive.delete("a.txt")
    assert drive.list(".") == []
    assert store.list(root) == []  # nothing left behind


def test_seed_works_share_drives_by_name(store, tmp_path, monkeypatch):
    """The seed's Work_A, Work_B and Work_C, each in a pod of its own, then a task of another workflow."""
    def run(name: str, *puts: tuple[str, str]) -> None:
        task(tmp_path, monkeypatch, name)
        with ferry.use_store(other_pod(store, tmp_path, name)):
            for filename, drive in puts:
                with open(filename, "w") as f:
                    f.write(f"Hello World from {name} !")
                ferry.Drive(f"ferry://{drive}").put(filename)

    run("work-a", ("a.txt", "drive_1"))
    run("work-b", ("b.txt", "drive_1"), ("b.txt", "drive_2"))
    run("work-c", ("c.txt", "drive_2"))

    task(tmp_path, monkeypatch, "reader", workflow="another-workflow")
    with ferry.use_store(other_pod(store, tmp_path, "reader")):
        drive_1, drive_2 = ferry.Drive("ferry://drive_1"), ferry.Drive("ferry://drive_2")
        assert drive_1.list(".") == ["a.txt", "b.txt"] and drive_2.list(".") == ["b.txt", "c.txt"]
        assert drive_2.get("c.txt").read_text() == "Hello World from work-c !"
        assert drive_1.get("b.txt", "from-1.txt").read_text() == "Hello World from work-b !"
        with pytest.raises(PermissionError, match="put by 'app/work-b'; only the writer"):
            drive_1.delete("b.txt")


def test_list_by_prefix_and_get_to_a_chosen_path(store, tmp_path, monkeypatch):
    root = task(tmp_path, monkeypatch, "work")
    (root / "sub").mkdir()
    for name in ["x.txt", "sub/y.txt"]:
        (root / name).write_text(name)
    drive = ferry.Drive("ferry://shared")
    assert drive.put("x.txt", "data/2024/x.csv") == "data/2024/x.csv"
    drive.put("x.txt", "data/2025/x.csv")
    drive.put("x.txt", "database.db")
    assert drive.put("./sub/y.txt") == "sub/y.txt"
    assert drive.put(root / "sub/y.txt") == "y.txt"  # an absolute path: the file's name

    everything = ["data/2024/x.csv", "data/2025/x.csv", "database.db", "sub/y.txt", "y.txt"]
    assert drive.list() == drive.list(".") == everything
    assert drive.list("data/") == ["data/2024/x.csv", "data/2025/x.csv"]
    assert drive.list("data") == ["data/2024/x.csv", "data/2025/x.csv", "database.db"]
    assert drive.list("data/2024") == drive.list("data/2024/x") == ["data/2024/x.csv"]
    assert drive.list("nothing/") == []

    assert drive.get("data/2024/x.csv", tmp_path / "out.csv").read_text() == "x.txt"
    (tmp_path / "downloads").mkdir()
    assert drive.get("sub/y.txt", tmp_path / "downloads") == tmp_path / "downloads/y.txt"
    assert drive.get("sub/y.txt", str(tmp_path / "new/dir/y2.txt")).read_text() == "sub/y.txt"
    with pytest.raises(FileNotFoundError, match="'missing.txt' is not in ferry://shared"):
        drive.get("missing.txt")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        drive.put("sub")


def test_get_waits_for_a_file_that_appears_later(store, tmp_path, monkeypatch):
    task(tmp_path, monkeypatch, "reader")
    pathlib.Path("late.txt").write_text("worth the wait")

    def late_writer() -> None:
        time.sleep(0.4)
        with ferry.use_store(store):
            ferry.Drive("ferry://waiting", component_name="writer").put("late.txt")

    drive = ferry.Drive("ferry://waiting")
    with pytest.raises(FileNotFoundError):
        drive.get("late.txt", "got.txt")  # without a timeout: no waiting
    writer = threading.Thread(target=late_writer)
    started = time.monotonic()
    writer.start()
    try:
        assert drive.get("late.txt", "got.txt", timeout=20).read_text() == "worth the wait"
        assert time.monotonic() - started >= 0.4
    finally:
        writer.join()

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="'never.txt' did not appear in ferry://waiting within 0.3 seconds"):
        drive.get("never.txt", timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 3


def test_only_the_writer_can_delete(store, tmp_path, monkeypatch):
    task(tmp_path, monkeypatch, "work")
    pathlib.Path("m.txt").write_text("mine")
    owner = ferry.Drive("ferry://own", component_name="owner")
    other = ferry.Drive("ferry://own", component_name="other")
    owner.put("m.txt")
    with pytest.raises(PermissionError, match="put by 'owner'; only the writer that put a file can delete it"):
        other.delete("m.txt")
    assert other.list() == ["m.txt"] and other.get("m.txt", "copy.txt").read_text() == "mine"
    owner.delete("m.txt")
    assert other.list() == [] and objects(store, "own") == []
    with pytest.raises(FileNotFoundError, match="'m.txt' is not in ferry://own"):
        owner.delete("m.txt")


def test_a_second_writer_is_refused_unless_duplicates_are_allowed(store, tmp_path, monkeypatch):
    task(tmp_path, monkeypatch, "work")
    for name in ["a1", "a2", "b", "c"]:
        pathlib.Path(name).write_text(f"from {name}")
    a, b = ferry.Drive("ferry://dup", component_name="a"), ferry.Drive("ferry://dup", component_name="b")
    a.put("a1", "m.txt")
    with pytest.raises(FileExistsError, match="put by 'a'.*allow_duplicates=True"):
        b.put("b", "m.txt")
    a.put("a2", "m.txt")  # a writer replaces its own file, and its old object goes
    assert b.get("m.txt", "got").read_text() == "from a2" and len(objects(store, "dup")) == 1

    b_duplicates = ferry.Drive("ferry://dup", allow_duplicates=True, component_name="b")
    b_duplicates.put("b", "m.txt")
    assert b.list() == ["m.txt"]
    with pytest.raises(ValueError, match="copies by 'a', 'b'; choose one with component_name="):
        b.get("m.txt", "got")
    assert b.get("m.txt", "got", component_name="b").read_text() == "from b"
    assert b.get("m.txt", "got", component_name="a").read_text() == "from a2"
    with pytest.raises(FileExistsError, match="put by 'a'"):
        ferry.Drive("ferry://dup", component_name="c").put("c", "m.txt")
    a.put("a1", "m.txt")  # a still replaces its own copy, beside b's
    assert b.get("m.txt", "got", component_name="a").read_text() == "from a1"

    a.delete("m.txt")  # a's copy only
    assert b.get("m.txt", "got").read_text() == "from b"
    c = ferry.Drive("ferry://dup", component_name="c")
    with pytest.raises(FileExistsError, match="put by 'b'"):  # a duplicate is a copy like any other
        c.put("c", "m.txt")
    b.delete("m.txt")
    c.put("c", "m.txt")  # free again
    assert a.get("m.txt", "got").read_text() == "from c"


def race(store: ferry.Store, tmp_path: pathlib.Path, count: int, put) -> list[BaseException | None]:
    """Run ``put(i, file_i)`` for ``count`` writers released at the same moment; their errors."""
    barrier = threading.Barrier(count)

    def one(i: int) -> BaseException | None:
        source = tmp_path / f"source-{i}"
        source.write_bytes(bytes([i]) * 100_000)
        with ferry.use_store(store):
            barrier.wait()
            try:
                put(i, source)
            except FileExistsError as error:
                return error
        return None

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_racing_writers_never_corrupt_each_other(store, tmp_path, monkeypatch):
    task(tmp_path, monkeypatch, "reader")
    count = 8
    drive = ferry.Drive("ferry://race")

    refused = race(store, tmp_path, count,
                   lambda i, source: ferry.Drive("ferry://race", component_name=f"w{i}").put(source, "same.bin"))
    winners = [i for i, error in enumerate(refused) if error is None]
    assert len(winners) == 1  # exactly one writer gets the path; the others are refused...
    assert drive.get("same.bin", "got").read_bytes() == bytes([winners[0]]) * 100_000
    assert len(objects(store, "race")) == 1  # ...before they upload anything

    assert race(store, tmp_path, count, lambda i, source: ferry.Drive(
        "ferry://race", allow_duplicates=True, component_name=f"d{i}").put(source, "dup.bin")) == [None] * count
    for i in range(count):
        assert drive.get("dup.bin", "got", component_name=f"d{i}").read_bytes() == bytes([i]) * 100_000

    assert race(store, tmp_path, count, lambda i, source: ferry.Drive(
        "ferry://race", component_name="one").put(source, "own.bin")) == [None] * count
    assert drive.get("own.bin", "got").read_bytes() in {bytes([i]) * 100_000 for i in range(count)}


def test_a_claim_is_created_once_even_when_writers_race(store):
    uri = uris.join(store.raw_data_prefix, "claim")
    backend = store.backend(uri)
    barrier = threading.Barrier(16)

    def create(i: int) -> bool:
        barrier.wait()
        return backend.put_if_absent(uri, f"writer {i}".encode())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        created = list(pool.map(create, range(16)))
    assert created.count(True) == 1
    assert backend.read_bytes(uri) == f"writer {created.index(True)}".encode()
    assert backend.put_if_absent(uri, b"later") is False
    assert backend.read_bytes(uri) == f"writer {created.index(True)}".encode()
    assert [info.path for info in backend.list(uris.join(store.raw_data_prefix, ""))] == ["claim"], "no temporary left"


@pytest.mark.parametrize("name", ["lit://drive_1", "drive_1", "ferry://", "ferry://a/b", "ferry://-a", "ferry://a b",
                                  "FERRY://a", "ferry://" + "a" * 64, None])
def test_a_malformed_name_shows_the_expected_form(name):
    with pytest.raises(ValueError, match=r"expected 'ferry://<name>', where <name> is 1 to 63 letters, digits"):
        ferry.Drive(name)


def test_names_and_writer_identity(monkeypatch):
    assert ferry.Drive("ferry://Drive_1.a-b").id == "ferry://Drive_1.a-b"
    monkeypatch.delenv("FERRY_WORKFLOW", raising=False)
    monkeypatch.delenv("FERRY_TASK", raising=False)
    assert ferry.Drive("ferry://d").component_name == f"{socket.gethostname()}-{os.getpid()}"
    monkeypatch.setenv("FERRY_WORKFLOW", "wf")
    monkeypatch.setenv("FERRY_TASK", "train")
    assert ferry.Drive("ferry://d").component_name == "wf/train"
    assert ferry.Drive("ferry://d", component_name="mine").component_name == "mine"
    with pytest.raises(ValueError, match="component_name must not be empty"):
        ferry.Drive("ferry://d", component_name=" ")


def test_drive_paths_cannot_escape(store, tmp_path, monkeypatch):
    root = task(tmp_path, monkeypatch, "work")
    pathlib.Path("a.txt").write_text("a")
    drive = ferry.Drive("ferry://safe")
    for bad in ["../a.txt", "/etc/passwd", "x/../../a.txt", "x//a.txt"]:
        with pytest.raises(ferry.PathEscapeError, match="not a clean relative path"):
            drive.put("a.txt", bad)
        with pytest.raises(ferry.PathEscapeError):
            drive.get(bad)
    with pytest.raises(ValueError, match="reserved for the drive's records"):
        drive.put("a.txt", "x/.ferry-claim")
    drive.put("a.txt", "sub/a.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ferry.PathEscapeError, match="resolves outside"):
        drive.get("sub/a.txt")
    assert list(outside.iterdir()) == []


def test_copies_say_who_put_each_file_and_its_size_and_names_list_the_drives(store, tmp_path, monkeypatch):
    root = task(tmp_path, monkeypatch, "first")
    (root / "a.txt").write_text("12345")
    ferry.Drive("ferry://shared", allow_duplicates=True).put("a.txt", "reports/a.txt")
    ferry.Drive("ferry://other").put("a.txt")
    root = task(tmp_path, monkeypatch, "second")
    (root / "b.txt").write_text("1234567")
    ferry.Drive("ferry://shared", allow_duplicates=True).put("b.txt", "reports/a.txt")
    ferry.Drive("ferry://shared").put("b.txt", "top.txt")

    copies = ferry.Drive("ferry://shared").copies()
    assert [(c.path, c.writer, c.size) for c in copies] == [
        ("reports/a.txt", "app/first", 5), ("reports/a.txt", "app/second", 7), ("top.txt", "app/second", 7)]
    assert [c.path for c in ferry.Drive("ferry://shared").copies("reports/")] == ["reports/a.txt"] * 2
    assert drives.names(store) == ["other", "shared"]


@pytest.mark.parametrize("named", ["../../secret", "x/../../../secret", "sub/object", "..", "s3://other/key", ""])
def test_a_copy_record_naming_an_object_outside_the_drive_is_refused(store, tmp_path, monkeypatch, named):
    """A copy record is a file in the store, which any task of the namespace can write: one naming
    another object would make ``get`` read it and ``put``/``delete`` remove it."""
    task(tmp_path, monkeypatch, "work")
    pathlib.Path("a.txt").write_text("a")
    drive = ferry.Drive("ferry://guarded")
    drive.put("a.txt")
    victim = uris.join(store.raw_data_prefix, "secret")
    store.backend(victim).write_bytes(victim, b"keep me")
    record = uris.join(store.raw_data_prefix, "drives", "guarded", "files", "a.txt", ".ferry-copies", "app%2Fwork")
    forged = {**json.loads(store.backend(record).read_bytes(record)), "object": named}
    store.backend(record).write_bytes(record, json.dumps(forged).encode())

    for action in (lambda: drive.get("a.txt", tmp_path / "got"), lambda: drive.delete("a.txt"),
                   lambda: drive.put("a.txt")):
        with pytest.raises(ferry.PathEscapeError, match=r"guarded.*a\.txt.*object .*not an object of this drive"):
            action()
    assert store.backend(victim).read_bytes(victim) == b"keep me"
    assert not (tmp_path / "got").exists()

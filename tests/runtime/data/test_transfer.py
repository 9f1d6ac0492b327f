"""The transfer engine against the local store and the real S3 server."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading

import pytest

import ferry
from ferry.api import resource, taskpod
from ferry.core import uris
from ferry.data import manifest
from ferry.pod import podruntime
from tests.runtime.conftest import snapshot
from tests.runtime.helpers import spy_on


def corrupt_one_byte(store: ferry.Store, uri: str) -> None:
    """Flip one byte of a stored object behind Ferry's back (boto3 for S3, the filesystem for file://)."""
    backend = store.backend(uri)
    data = bytearray(backend.read_bytes(uri))
    data[len(data) // 2] ^= 0xFF
    backend.write_bytes(uri, bytes(data))


def test_directory_round_trip_keeps_everything(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    restored = store.download_directory(ref, tmp_path / "out")

    expected = snapshot(tree)
    expected["link-to-a"] = expected["a.txt"]  # links inside the tree are stored as what they point to
    expected.update({k.replace("nested/deeper", "linked-dir"): v for k, v in expected.items()
                     if k.startswith("nested/deeper/")})
    assert snapshot(restored) == expected
    assert (restored / "run.sh").stat().st_mode & 0o111 == 0o111
    assert (restored / "empty dir" / "also empty").is_dir()
    assert ref.kind == ferry.Kind.DIRECTORY and ref.file_count == 8
    assert ref.size == sum(len(v[0]) for v in expected.values() if v[0] is not None)


def test_manifest_lists_every_file_with_size_sha256_and_mode(store, tree):
    ref = store.upload_directory(tree)
    contents = store.manifest(ref)
    run = contents.find("run.sh")
    assert run.mode == 0o755 and run.size == len("#!/bin/sh\necho hi\n")
    assert contents.find("empty.bin").sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert contents.empty_directories == ["empty dir/also empty"]
    assert ref.manifest_digest == contents.digest()
    part = store.manifest(ref, keep=lambda path: path.startswith("empty"))
    assert part.files == [contents.find("empty.bin")] and part.empty_directories == ["empty dir/also empty"]


def test_corrupt_byte_fails_download_naming_the_file(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    corrupt_one_byte(store, uris.join(ref.uri, "nested/b.csv"))

    with pytest.raises(ferry.IntegrityError) as caught:
        store.download_directory(ref, tmp_path / "out")
    assert caught.value.name.startswith("nested/b.csv")
    assert caught.value.what == "sha256" and caught.value.expected == store.manifest(ref).find("nested/b.csv").sha256
    assert "nested/b.csv" in str(caught.value) and "expected" in str(caught.value)
    assert not (tmp_path / "out" / "nested" / "b.csv").exists()
    assert not list((tmp_path / "out" / "nested").glob("*ferry-tmp*"))


def test_truncated_object_fails_on_size(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    store.backend(ref.uri).write_bytes(uris.join(ref.uri, "a.txt"), b"alph")
    with pytest.raises(ferry.IntegrityError, match=r"a.txt.*size mismatch, expected 5 bytes, got 4 bytes"):
        store.download_directory(ref, tmp_path / "out")


def test_changed_manifest_fails_against_the_reference_digest(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    corrupt_one_byte(store, uris.join(ref.uri, manifest.NAME))
    with pytest.raises(ferry.IntegrityError, match="manifest digest"):
        store.download_directory(ref, tmp_path / "out")


@pytest.mark.parametrize("bad_path", ["../escaped.txt", "/etc/escaped.txt", "a/../../escaped.txt", "a/./x",
                                      "a//x"])  # "C:/x" is a folder named "C:" on POSIX
def test_manifest_with_escaping_path_is_refused(store, tree, tmp_path, bad_path):
    ref = store.upload_directory(tree)
    manifest_uri = uris.join(ref.uri, manifest.NAME)
    data = store.backend(ref.uri).read_bytes(manifest_uri).replace(b'"path":"a.txt"', f'"path":"{bad_path}"'.encode())
    store.backend(ref.uri).write_bytes(manifest_uri, data)

    with pytest.raises(ferry.PathEscapeError, match="not a clean relative path"):
        store.download_directory(ref.uri, tmp_path / "out" / "inner")
    assert not (tmp_path / "out" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_link_in_destination_cannot_redirect_a_download(store, tree, tmp_path):
    ref = store.upload_directory(tree)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "nested").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ferry.PathEscapeError, match="resolves outside"):
        store.download_directory(ref, target)
    assert list(outside.iterdir()) == []


def test_failed_upload_leaves_no_manifest_and_no_complete_output(store, tree, tmp_path):
    spy = spy_on(store, fail_at=3, error=RuntimeError("disk on fire"))
    destination = store.random_remote_path()
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.upload_directory(tree, destination)

    assert not store.backend(destination).stat(uris.join(destination, manifest.NAME))
    assert spy.uploads and all(not u.endswith(manifest.NAME) for u in spy.uploads)
    assert ferry.Directory(destination).manifest().files != []  # some files got there...
    complete = ferry.BlobRef(uri=destination, kind="directory", manifest_digest="sha256:" + "0" * 64)
    with pytest.raises(ferry.IncompleteOutputError, match="upload did not finish"):
        store.download_directory(complete, tmp_path / "out")  # ...but nothing reads it as the output


def test_failed_rerun_unpublishes_the_previous_output(store, tree):
    destination = store.random_remote_path()
    store.upload_directory(tree, destination)
    (tree / "a.txt").write_text("changed")
    spy_on(store, fail_at=1, error=RuntimeError("network gone"))
    with pytest.raises(RuntimeError):
        store.upload_directory(tree, destination)
    assert not store.backend(destination).stat(uris.join(destination, manifest.NAME))


def test_reupload_sends_only_what_changed_and_drops_removed_files(store, tree, tmp_path):
    destination = store.random_remote_path()
    first = store.upload_directory(tree, destination)
    (tree / "nested" / "b.csv").write_text("x,y\n3,4\n")
    (tree / "with space.txt").unlink()
    (tree / "run.sh").chmod(0o700)  # a mode change alone is recorded, not re-sent

    spy = spy_on(store)
    seen: list[ferry.Progress] = []
    second = store.upload_directory(tree, destination, progress=seen.append)

    assert spy.uploads == [uris.join(destination, "nested/b.csv")]
    assert seen[-1].files_done == seen[-1].files_total == 7 and seen[-1].files_skipped == 6
    assert seen[-1].bytes_done == seen[-1].bytes_total == second.size
    assert second.manifest_digest != first.manifest_digest
    assert store.backend(destination).stat(uris.join(destination, "with space.txt")) is None
    restored = store.download_directory(second, tmp_path / "out")
    assert (restored / "nested" / "b.csv").read_text() == "x,y\n3,4\n"
    assert (restored / "run.sh").stat().st_mode & 0o777 == 0o700
    assert not (restored / "with space.txt").exists()


def test_progress_reports_bytes_and_files_from_all_threads(store, tree, tmp_path):
    events: list[ferry.Progress] = []
    lock = threading.Lock()

    def record(progress: ferry.Progress) -> None:
        with lock:
            events.append(progress)

    ref = store.upload_directory(tree, progress=record)
    assert events[-1].files_done == events[-1].files_total == 8
    assert events[-1].bytes_done == events[-1].bytes_total == ref.size
    events.clear()
    store.download_directory(ref, tmp_path / "out", progress=record)
    assert max(e.bytes_done for e in events) == ref.size and max(e.files_done for e in events) == 8


def test_transient_errors_are_retried(store, tree, tmp_path):
    spy = spy_on(store, fail_at=2, error=ConnectionError("connection reset"))
    ref = store.upload_directory(tree)
    assert len(spy.uploads) == 9  # 8 files, one of them twice
    assert snapshot(store.download_directory(ref, tmp_path / "out"))["a.txt"][0] == b"alpha"


def test_escaping_symlink_is_rejected_before_anything_is_sent(store, tree, tmp_path):
    (tmp_path / "secret").write_text("do not ship")
    (tree / "nested" / "leak").symlink_to(tmp_path / "secret")
    spy = spy_on(store)
    with pytest.raises(ferry.PathEscapeError, match="leak links to .*secret, outside"):
        store.upload_directory(tree)
    assert spy.uploads == []


def test_empty_directory_round_trips(store, tmp_path):
    (tmp_path / "nothing").mkdir()
    ref = store.upload_directory(tmp_path / "nothing")
    assert (ref.size, ref.file_count) == (0, 0)
    assert list(store.download_directory(ref, tmp_path / "out").iterdir()) == []


def test_single_file_round_trip_and_corruption(store, tmp_path):
    source = tmp_path / "report ü.txt"
    source.write_text("numbers")
    ref = store.upload_file(source)
    assert ref.uri.startswith(store.raw_data_prefix) and uris.basename(ref.uri) == "report ü.txt"
    assert (ref.size, ref.file_count, ref.kind) == (7, 1, ferry.Kind.FILE)
    assert store.download_file(ref, tmp_path / "copy").read_text() == "numbers"

    corrupt_one_byte(store, ref.uri)
    with pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
        store.download_file(ref, tmp_path / "copy2")
    assert not (tmp_path / "copy2").exists()


def test_run_all_keeps_order_and_threads_bounded_and_stops_at_a_failure():
    from ferry.data import transfer

    running, most, lock = set(), [0], threading.Lock()

    def task(number: int, fail: bool = False):
        def run():
            with lock:
                running.add(number)
                most[0] = max(most[0], len(running))
            try:
                if fail:
                    raise RuntimeError(f"task {number} failed")
                return number * 2
            finally:
                with lock:
                    running.discard(number)
        return run

    assert transfer._run_all([task(n) for n in range(500)], 8) == [n * 2 for n in range(500)]
    assert most[0] <= 8 and not running
    started = []
    tasks = [lambda n=n: started.append(n) for n in range(1000)]
    tasks[10] = task(10, fail=True)
    with pytest.raises(RuntimeError, match="task 10 failed"):
        transfer._run_all(tasks, 1)  # one thread: nothing after the failure starts
    assert started == list(range(10))
    assert transfer._run_all([], 8) == []


def _foreign_manifest(store: ferry.Store, tmp_path, foreign: str) -> ferry.BlobRef:
    """A manifest a hostile task wrote under the raw data prefix: one honest file, and one entry whose
    ``object`` names ``foreign``, with that object's true size and sha256 so only its place is wrong."""
    honest = store.upload_files({"ok.txt": _write(tmp_path / "ok.txt", b"fine")})
    secret = b"AWS_SECRET_ACCESS_KEY=hunter2"
    entries = [*(entry.model_copy(update={"object": manifest.object_uri(honest.uri, entry)})
                 for entry in store.manifest(honest).files),
               manifest.Entry(path="sub/keys.txt", size=len(secret), sha256=hashlib.sha256(secret).hexdigest(),
                              object=foreign)]
    return store.publish_manifest(manifest.Manifest(files=entries), kind=ferry.Kind.ASSET)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _foreign_objects(store: ferry.Store, tmp_path) -> list[str]:
    secret = _write(tmp_path / "keys.txt", b"AWS_SECRET_ACCESS_KEY=hunter2")
    prefix = store.raw_data_prefix
    scheme, _, rest = prefix.partition("://")
    bucket = rest.split("/", 1)[0]
    found = [secret.as_uri(), "file:///proc/self/environ", f"{prefix}/x/../../outside/keys.txt",
             f"{prefix}/./x/keys.txt"]
    if scheme == "file":
        outside = _write(tmp_path / "outside.txt", secret.read_bytes())
        found += [outside.as_uri(), f"{prefix}/x/%2e%2e/%2E%2E/keys.txt", "file://otherhost" + outside.as_uri()[7:]]
    else:
        found += [f"{scheme}://other-bucket/keys.txt", f"{scheme}://{bucket}/not-ferry/keys.txt",
                  f"{scheme}://{bucket}keys.txt"]
    return found


READERS = {
    "Directory.listdir": lambda ref, target: ferry.Directory.from_blob(ref).listdir(),
    "Directory.download": lambda ref, target: ferry.Directory.from_blob(ref).download(),
    "Asset[path]": lambda ref, target: ferry.Asset(ref)["ok.txt"],
    "Asset.restore": lambda ref, target: ferry.Asset(ref).restore(to=target),
    "Asset.restore(match=)": lambda ref, target: ferry.Asset(ref).restore(match="ok.*", to=target),
    "asset(other)": lambda ref, target: ferry.asset(ferry.Asset(ref), at=target.parent),
    "Store.get (ferry outputs)": lambda ref, target: ferry.current_store().get(ref, target),
    "Store.part": lambda ref, target: ferry.current_store().part(ref, lambda path: path == "ok.txt"),
    "Store.list (ferry ls)": lambda ref, target: ferry.current_store().list(ref.uri),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_manifest_entry_cannot_name_an_object_outside_its_store(store, tmp_path, reader):
    """A task writes the manifests of its outputs and assets: an entry naming ``file:///proc/self/environ``,
    another bucket or a place outside the raw data prefix would make the next task (or ``ferry outputs``)
    read that in its own container and publish it. Every reader refuses the whole manifest, naming the entry."""
    pod_fetch = podruntime.fetch
    for foreign in _foreign_objects(store, tmp_path):
        ref = _foreign_manifest(store, tmp_path, foreign)
        target = tmp_path / "out" / secrets.token_hex(4)
        target.mkdir(parents=True)
        with pytest.raises(ferry.PathEscapeError, match=r"'sub/keys.txt'.* names the object .*, outside"):
            READERS[reader](ref, target)
        assert not any(path.is_file() for path in target.rglob("*")), foreign
    inputs = tmp_path / "inputs"
    plan = taskpod.PodPlan(workflow="wf", namespace="ns", execution_id="x", task="t", attempt=1,
                           output_prefix=store.random_remote_path(), inputs={"assets": resource.Output(
                               **json.loads(ref.to_json()))})
    with pytest.raises(ferry.PathEscapeError, match="names the object"):
        pod_fetch(plan, store, inputs)
    assert not (inputs / "assets" / "sub" / "keys.txt").exists()


def test_entries_may_name_objects_anywhere_under_the_raw_data_prefix(store, tmp_path):
    """What Ferry itself writes: assets made of other assets name objects in other outputs' folders."""
    first = store.upload_files({"a b#%.txt": _write(tmp_path / "a.txt", b"alpha")})
    entry = store.manifest(first).files[0]
    combined = store.publish_manifest(manifest.Manifest(files=[entry.model_copy(update={
        "path": "copy/a.txt", "object": manifest.object_uri(first.uri, entry)})]), kind=ferry.Kind.ASSET)
    assert (ferry.Asset(combined).restore(to=tmp_path / "out")["copy/a.txt"]).read_bytes() == b"alpha"


def test_publishing_over_a_manifest_with_a_foreign_object_replaces_it(store, tree, tmp_path):
    destination = store.random_remote_path()
    store.upload_directory(tree, destination)
    hostile = manifest.Manifest(files=[manifest.Entry(path="a.txt", size=1, object="file:///proc/self/environ")])
    store.backend(destination).write_bytes(uris.join(destination, manifest.NAME), hostile.to_bytes())
    ref = store.upload_directory(tree, destination)
    assert (store.download_directory(ref, tmp_path / "out") / "a.txt").read_text() == "alpha"

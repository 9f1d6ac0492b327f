"""``list[ferry.File]`` and ``list[ferry.Directory]``: many files or directories travel between tasks as
one directory, named by their index, stored files referenced rather than copied."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

import ferry
from ferry.api import resource
from ferry.data import manifest
from ferry.values import lists, typed
from tests.runtime.values.test_files import other_pod


def write(path: pathlib.Path, text: str) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def passed(annotation, value, store: ferry.Store, tmp_path: pathlib.Path):
    """Published as a task's output, rebuilt in the next task's pod from the status's JSON."""
    output = typed.dump(annotation, value, store, store.random_remote_path("o0.json"))
    received = resource.Output.model_validate(json.loads(json.dumps(output.dump())))
    pod2 = other_pod(store, tmp_path)
    with ferry.use_store(pod2):
        return output, typed.load(annotation, received, pod2)


def stored_manifest(store: ferry.Store, output: resource.Output) -> manifest.Manifest:
    return store.manifest(output.blob())


@pytest.mark.parametrize("annotation", [list[ferry.File], list[ferry.Directory]])
def test_lists_of_files_or_directories_travel_as_one_directory(annotation):
    assert typed.kind_of(annotation) == resource.Kind.DIRECTORY and typed.unsupported(annotation) is None


@pytest.mark.parametrize("annotation", [dict[str, ferry.File], list[ferry.Asset], list[list[ferry.File]],
                                        list[ferry.File] | None])
def test_other_collections_of_blobs_are_still_refused(annotation):
    assert "not supported" in typed.unsupported(annotation)


def test_a_list_of_local_files_round_trips_in_its_order(local_store, tmp_path):
    names = [f"{letter}.txt" for letter in "kjihgfedcba"]  # 11: names 00..10, not in alphabetical order
    files = [ferry.File(write(tmp_path / "out" / name, name.upper())) for name in names]
    with ferry.use_store(local_store):
        output, received = passed(list[ferry.File], files, local_store, tmp_path)
    assert output.kind == resource.Kind.DIRECTORY and output.file_count == 11
    assert [e.path for e in stored_manifest(local_store, output).files] == [f"{i:02d}" for i in range(11)]
    assert [type(f) for f in received] == [ferry.File] * 11
    with ferry.use_store(other_pod(local_store, tmp_path)):
        assert [f.open("r").read() for f in received] == [name.upper() for name in names]
        assert pathlib.Path(received[3]).read_text() == "H.TXT"  # downloaded on first use


def test_stored_files_are_referenced_not_copied(local_store, tmp_path):
    with ferry.use_store(local_store):
        ref = ferry.to_blob(ferry.File(write(tmp_path / "big.bin", "payload")))
        stored = ferry.from_blob(ref)
        output, received = passed(list[ferry.File], [stored, ferry.File(write(tmp_path / "new.txt", "new"))],
                                  local_store, tmp_path)
    first, second = stored_manifest(local_store, output).files
    assert first.object == ref.uri and first.sha256 == ref.sha256
    assert second.object is None  # a local file is uploaded into the directory
    folder = pathlib.Path(output.blob().uri.removeprefix("file://"))
    assert sorted(os.listdir(folder)) == [manifest.NAME, "1"]
    with ferry.use_store(other_pod(local_store, tmp_path)):
        assert received[0].remote_source == ref.uri and received[0].open("r").read() == "payload"


def test_a_loaded_file_is_verified_when_read(local_store, tmp_path):
    with ferry.use_store(local_store):
        _, received = passed(list[ferry.File], [ferry.File(write(tmp_path / "a.txt", "alpha"))], local_store,
                             tmp_path)
    object_path = pathlib.Path(received[0].remote_source.removeprefix("file://"))
    object_path.write_text("ALPHA")  # another tenant, or a bad disk, changed the object
    with ferry.use_store(other_pod(local_store, tmp_path, "pod3")), pytest.raises(ferry.IntegrityError):
        received[0].open().read()


def test_a_stored_file_of_another_store_is_uploaded_not_referenced(local_store, tmp_path):
    elsewhere = ferry.Store(local_store.settings.model_copy(
        update={"raw_data_prefix": (tmp_path / "elsewhere").as_uri()}))
    with ferry.use_store(elsewhere):
        ref = ferry.to_blob(ferry.File(write(tmp_path / "x.txt", "outside")))
    with ferry.use_store(local_store):
        output, received = passed(list[ferry.File], [ferry.from_blob(ref)], local_store, tmp_path)
    entry, = stored_manifest(local_store, output).files
    assert entry.object is None and entry.sha256 == ref.sha256
    with ferry.use_store(other_pod(local_store, tmp_path)):
        assert received[0].open("r").read() == "outside"


def test_an_empty_list_is_an_empty_directory(local_store, tmp_path):
    with ferry.use_store(local_store):
        output, received = passed(list[ferry.File], [], local_store, tmp_path)
    assert received == [] and output.file_count == 0


def test_a_list_of_directories_round_trips_each_under_its_index(local_store, tmp_path):
    write(tmp_path / "one" / "a.txt", "a")
    write(tmp_path / "one" / "sub" / "b.txt", "b")
    (tmp_path / "empty").mkdir()
    with ferry.use_store(local_store):
        stored = ferry.from_blob(ferry.to_blob(ferry.Directory(write(tmp_path / "two" / "c.txt", "c").parent)))
        output, received = passed(list[ferry.Directory],
                                  [ferry.Directory(tmp_path / "one"), stored, ferry.Directory(tmp_path / "empty")],
                                  local_store, tmp_path)
    contents = stored_manifest(local_store, output)
    assert [e.path for e in contents.files] == ["0/a.txt", "0/sub/b.txt", "1/c.txt"]
    assert contents.files[2].object is not None and contents.empty_directories == ["2"]
    assert len(received) == 3 and all(isinstance(d, ferry.Directory) for d in received)
    with ferry.use_store(other_pod(local_store, tmp_path)):
        assert received[0].open("sub/b.txt", "r").read() == "b" and received[1].open("c.txt", "r").read() == "c"
        assert received[2].listdir() == []


def test_a_directory_with_files_at_its_top_is_not_a_list_of_directories(local_store, tmp_path):
    write(tmp_path / "d" / "top.txt", "t")
    with ferry.use_store(local_store):
        output = typed.dump(ferry.Directory, ferry.Directory(tmp_path / "d"), local_store, "unused")
        with pytest.raises(ValueError, match="top.txt.*not only directories.*ferry.Directory or list\\[ferry.File\\]"):
            typed.load(list[ferry.Directory], output, local_store)
        assert [f.open("r").read() for f in typed.load(list[ferry.File], output, local_store)] == ["t"]


@pytest.mark.parametrize("annotation, value, problem", [
    (list[ferry.File], ["a.txt"], r"expected list\[File\], got str 'a.txt' at index 0"),
    (list[ferry.File], ferry.File("s3://b/k"), r"expected list\[File\], got File"),
    (list[ferry.Directory], [ferry.File("s3://b/k")], r"expected list\[Directory\], got File .* at index 0"),
])
def test_a_list_of_something_else_is_refused(annotation, value, problem):
    with pytest.raises(ValueError, match=problem):
        typed.check(annotation, value)


def test_names_are_padded_to_the_width_of_the_last_index():
    assert [lists.item_name(i, 1) for i in range(1)] == ["0"]
    assert lists.item_name(7, 10) == "7" and lists.item_name(7, 11) == "07" and lists.item_name(99, 101) == "099"


@ferry.task
def several(n: int) -> list[ferry.File]:
    paths = []
    for i in range(n):
        path = pathlib.Path(f"part-{i}.txt")
        path.write_text(str(i * i))
        paths.append(ferry.File(path))
    return paths


@ferry.task
def joined(parts: list[ferry.File]) -> str:
    return ",".join(open(part).read() for part in parts)


@ferry.workflow
def fan_in(n: int = 12) -> str:
    return joined(parts=several(n=n))


def test_a_task_returns_a_list_of_files_that_the_next_one_reads(local_store):
    with ferry.use_store(local_store):
        assert fan_in() == ",".join(str(i * i) for i in range(12))


@pytest.mark.parametrize("annotation", [list[ferry.File], list[ferry.Directory]])
def test_a_list_whose_manifest_names_an_object_outside_the_store_is_refused(local_store, tmp_path, annotation):
    """A task wrote the manifest: an entry naming another tenant's object (or /etc/passwd) is not read."""
    secret = write(tmp_path / "other-tenant" / "secret.txt", "secret")
    contents = manifest.Manifest(files=[manifest.Entry(path="0/x" if annotation == list[ferry.Directory] else "0",
                                                       size=6, sha256="0" * 64, object=secret.as_uri())])
    with ferry.use_store(local_store):
        ref = local_store._write_manifest(contents, local_store.random_remote_path(), ferry.Kind.DIRECTORY)
        with pytest.raises(ferry.PathEscapeError, match="outside this manifest's store"):
            typed.load(annotation, resource.Output.of(ref, resource.Kind.DIRECTORY), local_store)

"""Running a Python task in its own process: unpacking the workflow's code archive safely."""

import io
import sys
import tarfile
import tempfile

import pytest

import ferry
from ferry.cluster import remote
from ferry.core import errors
from ferry.pod import runner
from tests.runtime import sample_workflows as samples


def _archive(tmp_path, add) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        add(archive)
    (tmp_path / "code.tar.gz").write_bytes(buffer.getvalue())
    return (tmp_path / "code.tar.gz").as_uri()


def _file(archive: tarfile.TarFile, name: str, data: bytes = b"x = 1\n", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data))


@pytest.fixture(params=["data_filter", "without"], ids=["python-with-tar-filters", "python-3.11.0-3"])
def tar_filters(request, monkeypatch):
    """Python 3.11 before 3.11.4 (Debian bookworm's 3.11.2) has no extraction filters."""
    if request.param == "without":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)


@pytest.fixture(autouse=True)
def temporary_folders(tmp_path, monkeypatch):
    """Where ``fetch_code`` unpacks: this test's folder, not the machine's /tmp."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def clean_sys_path():
    saved = list(sys.path)
    yield
    sys.path[:] = saved


def test_code_archive_made_by_remote_is_unpacked(tmp_path, tar_filters, clean_sys_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("VALUE = 42\n")
    (tmp_path / "shared.py").write_text("SHARED = 1\n")
    (tmp_path / "src" / "pkg" / "shared.py").symlink_to(tmp_path / "shared.py")
    (tmp_path / "code.tar.gz").write_bytes(remote.package(tmp_path / "src"))
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    target = runner.fetch_code((tmp_path / "code.tar.gz").as_uri(), store)
    assert (target / "pkg" / "mod.py").read_text() == "VALUE = 42\n" and sys.path[0] == str(target)
    assert not (target / "pkg" / "shared.py").is_symlink() and (target / "pkg" / "shared.py").read_text() == "SHARED = 1\n"


@pytest.mark.parametrize("member", ["../escape.py", "/abs.py", "link", "dev"])
def test_code_archive_members_that_escape_or_are_not_files_are_refused(tmp_path, tar_filters, clean_sys_path, member,
                                                                       temporary_folders):
    def add(archive):
        if member == "link":
            _file(archive, "link", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        elif member == "dev":
            _file(archive, "dev", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=5)
        else:
            _file(archive, member)
    uri = _archive(tmp_path, add)
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    with pytest.raises(errors.PathEscapeError):
        runner.fetch_code(uri, store)
    assert not (tmp_path / "escape.py").exists()
    assert not list(temporary_folders.iterdir()), "a refused archive leaves nothing unpacked behind"


def test_the_same_sources_pack_to_the_same_bytes_at_any_time(tmp_path, monkeypatch):
    """The archive's digest names it in the store and keys the cache: a gzip header stamped with
    the time made every run's code look new (uploaded again, cache never hit)."""
    (tmp_path / "mod.py").write_text("VALUE = 1\n")
    first = remote.package(tmp_path)
    monkeypatch.setattr("time.time", lambda: 4_000_000_000.0)
    assert remote.package(tmp_path) == first


def test_a_code_archive_named_by_its_digest_must_have_it(tmp_path, clean_sys_path, temporary_folders):
    """Code archives sit in a folder every namespace reads: one swapped for another is refused."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text("VALUE = 1\n")
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    uri = remote.upload_code(tmp_path / "src", store)
    unpacked = runner.fetch_code(uri, store)
    assert unpacked.joinpath("mod.py").read_text() == "VALUE = 1\n"
    (tmp_path / "src" / "mod.py").write_text("VALUE = 'swapped'\n")
    store.backend(uri).write_bytes(uri, remote.package(tmp_path / "src"))
    with pytest.raises(errors.IntegrityError, match="sha256 mismatch"):
        runner.fetch_code(uri, store)
    assert list(temporary_folders.iterdir()) == [unpacked], "nothing unpacked from the swapped archive"


def test_a_manifest_compiled_with_dashed_names_still_runs(tmp_path, monkeypatch):
    """Before inputs and outputs kept their Python names, the SDK wrote ``max-rows`` and ``row-count``:
    such a Workflow still reaches ``max_rows`` and publishes under the names it declares."""
    from ferry.api import resource, taskpod

    monkeypatch.chdir(tmp_path)  # the task runs in its working directory; come back after
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    plan = taskpod.PodPlan(workflow="named", namespace="local", execution_id="e", task="count", attempt=1,
                           function="tests.runtime.sample_workflows:count", values={"n": 5, "max-rows": 2},
                           outputs=[resource.TaskOutput(name="row-count", kind=resource.Kind.VALUE),
                                    resource.TaskOutput(name="summary", kind=resource.Kind.VALUE)],
                           output_prefix=(tmp_path / "raw" / "e" / "count" / "1").as_uri())
    result = runner.execute(plan, store, tmp_path / "work")
    assert {name: output.value for name, output in result.outputs.items()} == {"row-count": 2, "summary": "2 rows"}


def _plan(tmp_path, function: str, outputs: list[str], **values):
    from ferry.api import resource, taskpod

    return taskpod.PodPlan(workflow="w", namespace="local", execution_id="e", task=function.replace("_", "-"),
                           attempt=1, function=f"tests.runtime.sample_workflows:{function}", values=values,
                           outputs=[resource.TaskOutput(name=n, kind=resource.Kind.VALUE) for n in outputs],
                           output_prefix=(tmp_path / "raw" / "e" / "t" / "1").as_uri())


@pytest.mark.parametrize("function, says", [
    ("three_for_two", "task three_for_two returned 3 values but its return type tuple[int, int] declares 2"),
    ("one_for_two", "task one_for_two returned int, not the 2 values its return type tuple[int, int] declares"),
])
def test_a_task_returning_another_count_of_values_than_it_declares_fails(tmp_path, monkeypatch, function, says):
    """The third of three values returned by a ``-> tuple[int, int]`` task was dropped without a word."""
    monkeypatch.chdir(tmp_path)
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    with pytest.raises(TypeError) as failed:
        runner.execute(_plan(tmp_path, function, ["o0", "o1"]), store, tmp_path / "work")
    assert str(failed.value) == says
    assert not store.list((tmp_path / "raw").as_uri()), "nothing is published"


def test_a_task_called_inside_a_task_is_refused_with_the_plain_function_to_call(tmp_path, monkeypatch):
    """It started a separate local run of its own, inside the task."""
    monkeypatch.chdir(tmp_path)
    store = ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri()))
    with pytest.raises(ferry.DefinitionError) as refused:
        runner.execute(_plan(tmp_path, "calls_a_task", ["o0"], a=1), store, tmp_path / "work")
    message = str(refused.value)
    assert "\n" not in message and "sample_workflows.py:" in message
    assert "task add is called inside task calls-a-task" in message and "add.fn(...)" in message
    assert samples.add.fn(a=1, b=1) == 2, "the plain function the message offers"

"""Workflows the authoring and local-executor tests run (task processes import this module)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
import typing

import ferry


@dataclasses.dataclass
class Stats:
    files: int
    names: list[str]


@ferry.task
def make_dir(n: int, prefix: str = "f") -> ferry.Directory:
    out = pathlib.Path("made")
    out.mkdir()
    for i in range(n):
        (out / f"{prefix}{i}.txt").write_text(f"{i}\n")
    return ferry.Directory(out)


@ferry.task
def stats(d: ferry.Directory) -> Stats:
    return Stats(files=len(os.listdir(d)), names=sorted(os.listdir(d)))


@ferry.task
def add(a: int, b: int) -> int:
    return a + b


@ferry.workflow
def directory_stats(n: int = 3) -> Stats:
    return stats(d=make_dir(n=n))


@ferry.task
def stamp(log: str, name: str) -> str:
    """Record when it ran: start and end times, one line each, in ``log``."""
    with open(log, "a") as out:
        out.write(f"{name} start {time.time()}\n")
    time.sleep(0.6)
    with open(log, "a") as out:
        out.write(f"{name} end {time.time()}\n")
    return name


@ferry.workflow
def two_in_parallel(log: str) -> tuple[str, str]:
    return stamp(log=log, name="a"), stamp(log=log, name="b")


@ferry.task(retries=2, retry_backoff_seconds=0)
def flaky_with_checkpoint() -> str:
    """Fails on its first attempt after saving a checkpoint; the second attempt resumes from it."""
    context = ferry.current_context()
    if context.attempt == 1:
        context.checkpoint.write(b"halfway")
        raise RuntimeError("first attempt fails")
    return f"attempt {context.attempt} resumed from {context.checkpoint.read().decode()}"


@ferry.workflow
def resumes() -> str:
    return flaky_with_checkpoint()


@ferry.task(secrets=["ferry-db"])
def describe_context(secret_group: str) -> dict:
    context = ferry.current_context()
    return {
        "cwd": os.getcwd(),
        "working_directory": str(context.working_directory),
        "execution_id": context.execution_id,
        "task": context.task_name,
        "attempt": context.attempt,
        "secret": context.secrets.get(secret_group, "token"),
        "empty": os.listdir("."),
    }


@ferry.workflow
def context_report(secret_group: str = "ferry-db") -> dict:
    return describe_context(secret_group=secret_group)


@ferry.task(cache=True, cache_version="1")
def counted(counter: str, x: int) -> int:
    """Appends a line to ``counter`` each time it really runs (in the pod's own filesystem on a cluster)."""
    os.makedirs(os.path.dirname(counter), exist_ok=True)
    with open(counter, "a") as out:
        out.write("ran\n")
    return x * 2


@ferry.workflow
def cached(counter: str, x: int = 21) -> int:
    return counted(counter=counter, x=x)


@ferry.task
def fails() -> int:
    raise ValueError("this task always fails")


@ferry.workflow
def failing() -> int:
    return fails()


@ferry.task
def sleeps(seconds: float) -> int:
    time.sleep(seconds)
    return 0


@ferry.task
def returns_its_environment() -> ferry.File:
    return ferry.File("/proc/self/environ")


@ferry.workflow
def leaks_environment() -> ferry.File:
    return returns_its_environment()


@ferry.task
def drive_writer(drive: str) -> str:
    pathlib.Path("note.txt").write_text("shared through the drive\n")
    ferry.Drive(drive).put("note.txt", "notes/note.txt")
    return "notes/note.txt"


@ferry.task
def drive_reader(drive: str, path: str) -> str:
    return ferry.Drive(drive).get(path, timeout=10).read_text()


@ferry.workflow
def through_a_drive(drive: str = "ferry://shared-notes") -> str:
    return drive_reader(drive=drive, path=drive_writer(drive=drive))


sensor = ferry.ObjectStoreSensor("wait-for-input", config={"poll_interval_seconds": 0.1})
impatient = ferry.ObjectStoreSensor("impatient", config={"poll_interval_seconds": 0.05, "timeout_seconds": 0.3},
                                    retries=1, retry_backoff_seconds=0)


@ferry.task
def read_text(path: str) -> str:
    return ferry.current_context().raw_data.open(path).read().decode()


@ferry.workflow
def wait_then_read(path: str) -> str:
    return read_text(path=sensor(path=path))


@ferry.workflow
def wait_in_vain(path: str) -> str:
    return impatient(path=path)


class Shout(ferry.TaskPlugin):
    """A plugin that ships with the workflow's code (not installed in the image)."""

    task_type = "shout"

    class Config(ferry.TaskPlugin.Config):
        times: int = 1

    def execute(self, word: str) -> str:
        return " ".join([word.upper()] * self.config.times)


shout = Shout("shout-twice", config={"times": 2})


@ferry.workflow
def shouting(word: str = "ferry") -> str:
    return shout(word=word)


@ferry.task(retries=1, retry_backoff_seconds=0)
def resumable_training() -> list:
    """Saves a directory of state on attempt 1 and fails; attempt 2 restores it and carries on."""
    checkpoint = ferry.current_context().checkpoint
    if not checkpoint.prev_exists():
        state = pathlib.Path("state")
        state.mkdir()
        (state / "epoch").write_text("3")
        checkpoint.save(state)
        raise RuntimeError("interrupted after epoch 3")
    restored = checkpoint.restore("restored")
    return [str(restored), (restored / "epoch").read_text()]


@ferry.workflow
def training() -> list:
    return resumable_training()


@ferry.task
def reach(other: str, needle_sha256: str) -> dict:
    """What a Python task's own code can reach of the store: is the store's key (given by its
    digest) anywhere it can read, and may it read and write another namespace's object
    ``s3://<other>``? (Given without its scheme: the operator refuses a spec naming it.)"""
    import glob
    import hashlib

    other = f"s3://{other}"

    seen = set(os.environ.values())
    for path in [*glob.glob("/proc/[0-9]*/environ"), *glob.glob("/ferry/**", recursive=True)]:
        try:
            text = pathlib.Path(path).read_bytes().decode(errors="replace")
        except OSError:
            continue
        seen.add(text)
        seen.update(part.partition("=")[2] for part in text.split("\0"))
        seen.update(part for part in text.replace('"', " ").split())
    found = any(hashlib.sha256(value.encode()).hexdigest() == needle_sha256 for value in seen)
    store = ferry.current_store()

    def refused(action) -> bool:
        try:
            action()
        except Exception as error:  # noqa: BLE001 - any refusal will do
            return "AccessDenied" in str(error) or "403" in str(error)
        return False

    ferry.Drive("ferry://notes").put(__file__, "sample.py")
    return {"key_found": found, "read_refused": refused(lambda: store.open(other).read()),
            "write_refused": refused(lambda: store.backend(other).write_bytes(other + ".planted", b"x")),
            "raw_data_prefix": store.raw_data_prefix}


@ferry.workflow
def reach_other(other: str, needle_sha256: str) -> dict:
    return reach(other=other, needle_sha256=needle_sha256)


@ferry.task
def claims(other: str) -> ferry.File:
    """Reports ``s3://<other>`` as its output: a task's code can replace Ferry's report of it."""
    from ferry.api import resource, taskpod
    from ferry.pod import podruntime

    honest = podruntime.report

    def lying(result, plan, store, path=None):
        forged = resource.Output(kind=resource.Kind.FILE, uri=f"s3://{other}")
        honest(taskpod.PublishResult(outputs={"o0": forged}), plan, store, path)

    podruntime.report = lying
    pathlib.Path("mine").write_text("mine")
    return ferry.File("mine")


@ferry.task
def text_of(f: ferry.File) -> str:
    return pathlib.Path(f).read_text()


@ferry.workflow
def borrow_through_a_report(other: str) -> str:
    return text_of(f=claims(other=other))


_seen: list[str] = []
"""Module state: a task process that inherited it from another task would see more than its own name."""


@ferry.task
def remember(name: str) -> list:
    _seen.append(name)
    return list(_seen)


@ferry.workflow
def remembers_twice() -> tuple[list, list]:
    return remember(name="first"), remember(name="second")


@ferry.task(timeout=1)
def oversleeps() -> int:
    time.sleep(300)
    return 0


@ferry.workflow
def times_out() -> int:
    return oversleeps()


@ferry.workflow
def naps(seconds: float = 60) -> int:
    return sleeps(seconds=seconds)


@ferry.task(retries=1, retry_backoff_seconds=0)
def noisy_maker(n: int) -> ferry.Directory:
    """Says which attempt it is in its log, and fails its first attempt (the history's tests)."""
    attempt = ferry.current_context().attempt
    print(f"noisy-maker attempt {attempt} says hello", flush=True)
    if attempt == 1:
        raise RuntimeError("the first attempt fails")
    out = pathlib.Path("made")
    out.mkdir()
    for i in range(n):
        (out / f"f{i}.txt").write_text(f"{i}\n")
    return ferry.Directory(out)


@ferry.workflow
def noisy_lineage(n: int = 2) -> Stats:
    return stats(d=noisy_maker(n=n))


@ferry.task(pod={"nodeSelector": {"pool": "gpu"}, "volumes": [{"name": "models", "persistentVolumeClaim": {
    "claimName": "models"}}], "volume_mounts": [{"name": "models", "mountPath": "/models"}], "scratchSizeLimit": "8Gi"})
def on_gpu(x: int) -> int:
    return x


@ferry.workflow
def placed(x: int = 1) -> int:
    return on_gpu(x=x)


class Counted(typing.NamedTuple):
    row_count: int
    summary: str


@ferry.task
def count(n: int, max_rows: int = 100) -> Counted:
    n = min(n, max_rows)
    return Counted(row_count=n, summary=f"{n} rows")


@ferry.task
def upper(text: str) -> str:
    return text.upper()


@ferry.workflow
def named(n: int = 3, max_rows: int = 100) -> Counted:
    counted = count(n=n, max_rows=max_rows)
    return Counted(row_count=counted.row_count, summary=upper(text=counted.summary))


@ferry.task
def note(text: str) -> ferry.File:
    """A file for a container task to read (``tests/runtime/execution/test_localpod.py``)."""
    path = pathlib.Path("note.txt")
    path.write_text(text)
    return ferry.File(path)


@ferry.task
def read_boxed(shout: ferry.File, pages: ferry.Directory, lines: int) -> dict:
    """What a container task wrote, read back by a Python task."""
    root = pathlib.Path(pages)
    return {"shout": pathlib.Path(shout).read_text(), "lines": lines,
            "pages": {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}}


@ferry.task
def three_for_two() -> tuple[int, int]:
    """Declares two outputs and returns three: the third must not vanish."""
    return 1, 2, 3


@ferry.task
def one_for_two() -> tuple[int, int]:
    return 1  # type: ignore[return-value]


@ferry.task
def calls_a_task(a: int) -> int:
    """Calls another task as if it were a function: that is a workflow's job."""
    return add(a=a, b=1)

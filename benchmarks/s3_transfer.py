"""Ferry against s5cmd, obstore, the AWS CLI and plain boto3: upload and download speed and memory on S3.

Every tool that applies runs each case against the local S3 server (MinIO, started the way the
tests start it):

- ``small``: 10,000 files of 4 KiB in 100 folders, uploaded then downloaded;
- ``medium``: 1,000 files of 1 MiB in 10 folders, uploaded then downloaded;
- ``big``: one file of 2 GiB, uploaded then downloaded;
- ``incremental``: the small files uploaded (``full``), then every 100th (1 %) rewritten with new
  random bytes of the same size and its mtime moved 2 s later, and the same upload timed again
  (``incremental``, whose files/s and MB/s count only the changed files): publishing a folder
  again after a small change. Ferry, s5cmd and the AWS CLI, which send only what changed; the
  original files are put back afterwards.
- ``partial``: after an untimed upload of the small files, one folder of them (``d000/``, 1 %)
  downloaded: restoring a part of a data set. Every tool but boto3.

Each transfer runs in its own child process, so its wall time, CPU time and peak RSS
(``ru_maxrss`` from ``wait4``) belong to that tool alone; the wall time includes the interpreter's
start and imports, as a user would see it: from bytecode (Ferry's modules are compiled first, as
installing a package does, so that a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` does not
compile them again in every run), and only the worker's own (the driver imports ``subprocess``,
``statistics`` and thread pools where it uses them, not in every worker). After each download, untimed, the files are compared with the
originals (count, size, sha256), so no tool is timed on a broken transfer; after an incremental
upload the tool's own download (untimed) checks that the bucket holds the new bytes.

Tools (the first five run by default):

- ``ferry``: ``Store.upload_directory``/``download_directory`` and ``upload_file``/``download_file``,
  so its numbers include what Ferry guarantees and the others do not: every file hashed (sha256)
  on upload, a manifest written last, every file's size and sha256 checked on download, and each
  file written to a temporary name and renamed into place. ``incremental`` calls
  ``upload_directory`` again on the same URI; ``partial`` is
  ``Asset.from_blob(ref).restore(match="d000/**", to=...)``.
- ``s5cmd``: s5cmd v2.3.0 (Go), built from its module on first use and cached under
  ``$FERRY_CACHE_DIR/bench`` (default ``~/.cache/ferry``): ``s5cmd cp 'DIR/*' s3://bucket/prefix/``
  and ``s5cmd cp 's3://bucket/prefix/*' DIR/`` (plain ``cp`` for the large file),
  ``s5cmd sync DIR/ s3://bucket/prefix/`` for ``incremental``. Its defaults (256 workers), with
  only its line per file turned off (``--log error``, as ``--only-show-errors`` for the AWS CLI).
- ``s5cmd-64``: the same with ``--numworkers 64``.
- ``obstore``: the obstore package (Rust's object_store) as one would use it: one ``S3Store``,
  asyncio with 64 requests in flight of ``put_async`` (a local path) and ``list`` + ``get_async``;
  for the large file its own multipart upload and a streamed download. No checksums.
- ``aws``: ``aws s3 cp --recursive`` (and plain ``aws s3 cp`` for the large file),
  ``aws s3 sync`` for ``incremental``, defaults as installed (10 concurrent requests).
- ``boto3``: the plain way: one client, a loop calling ``upload_file``/``download_file``
  (``list_objects_v2`` to find what to download). For the large file, ``upload_file``/
  ``download_file`` with their defaults, which already move parts in parallel.
- ``boto3-threads``: the same calls for the small files on a pool of 32 threads sharing one
  client (a pool of 32 connections), the usual first step past the loop. Not run on the large
  file, where it is the same as ``boto3``.

After the table of measurements come Ferry's time divided by each other tool's, per case and
direction (``s5cmd best``: the faster of ``s5cmd`` and ``s5cmd-64``), and each tool's incremental
upload time divided by its full one; ``--plot`` draws the first as a bar chart.

The AWS CLI and matplotlib (only for ``--plot``) are not dependencies of Ferry; install them once
into the project's environment. s5cmd, like MinIO, needs Go.

    .venv/bin/pip install awscli matplotlib

Run from the repository root (``--repeat 3`` reports the median of three runs of each transfer):

    .venv/bin/python benchmarks/s3_transfer.py --plot ratios.png                      # full size
    .venv/bin/python benchmarks/s3_transfer.py --files 1000 --medium-files 100 --big-mib 256  # quick
    .venv/bin/python benchmarks/s3_transfer.py --tools ferry,s5cmd --cases small,partial

Data, MinIO's data and downloads live in one temporary directory (``--tmp`` picks where, on a
local disk), removed at the end. MB is 10^6 bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.cluster.s3 import S3

ROOT = pathlib.Path(__file__).resolve().parents[1]
KiB, MiB = 1024, 1024 * 1024
TOOLS = ("ferry", "s5cmd", "s5cmd-64", "obstore", "aws", "boto3", "boto3-threads")
DEFAULT_TOOLS = TOOLS[:5]
CASES = ("small", "medium", "big", "incremental", "partial")
CASE_TOOLS = {"big": tuple(t for t in TOOLS if t != "boto3-threads"),  # the same as boto3 for one file
              "incremental": ("ferry", "s5cmd", "aws"),  # those that send only what changed
              "partial": ("ferry", "s5cmd", "s5cmd-64", "obstore", "aws")}
DATA = {"small": "small", "medium": "medium", "big": "big", "incremental": "small", "partial": "small"}  # data sets
FOLDER = 100  # small files per folder: ``partial`` restores one, ``incremental`` changes one file in each
PARTIAL = "d000"
THREADS = 32
IN_FLIGHT = 64
S5CMD = "v2.3.0"


# --- the workers: one transfer per process ---------------------------------------------------

def _scope(case: str, op: str, local: pathlib.Path, prefix: str) -> tuple[pathlib.Path, str]:
    """A partial download reads one folder and writes it at its place under the output."""
    if case == "partial" and op == "download":
        return local / PARTIAL, f"{prefix}/{PARTIAL}"
    return local, prefix


def _boto3_client(pool: int = 10):
    import boto3
    import botocore.config
    return boto3.client("s3", config=botocore.config.Config(max_pool_connections=pool))


def _boto3_upload(local: pathlib.Path, bucket: str, prefix: str, threads: int) -> None:
    import concurrent.futures
    client = _boto3_client(max(threads, 10))
    if local.is_file():
        client.upload_file(str(local), bucket, prefix)
        return
    pairs = [(str(path), f"{prefix}/{path.relative_to(local).as_posix()}")
             for path in sorted(local.rglob("*")) if path.is_file()]
    if threads == 1:
        for path, key in pairs:
            client.upload_file(path, bucket, key)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda pair: client.upload_file(pair[0], bucket, pair[1]), pairs))


def _boto3_download(local: pathlib.Path, bucket: str, prefix: str, threads: int, single: bool) -> None:
    import concurrent.futures
    client = _boto3_client(max(threads, 10))
    if single:
        client.download_file(bucket, prefix, str(local))
        return
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
            for item in page.get("Contents", [])]

    def fetch(key: str) -> None:
        target = local / key[len(prefix) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))

    if threads == 1:
        for key in keys:
            fetch(key)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(fetch, keys))


def _obstore(op: str, local: pathlib.Path, bucket: str, prefix: str, single: bool) -> None:
    import asyncio

    import obstore
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=os.environ["AWS_ENDPOINT_URL"], region=os.environ["AWS_REGION"],
                    virtual_hosted_style_request=False, client_options={"allow_http": True})
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def put(path: pathlib.Path) -> None:
        async with limit:
            await obstore.put_async(store, f"{prefix}/{path.relative_to(local).as_posix()}", path)

    async def get(key: str) -> None:
        async with limit:
            data = await (await obstore.get_async(store, key)).bytes_async()
        target = local / key[len(prefix) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def transfer() -> None:
        if single and op == "upload":
            await obstore.put_async(store, prefix, local)
        elif single:
            result = await obstore.get_async(store, prefix)
            with open(local, "wb") as f:
                async for chunk in result:
                    f.write(chunk)
        elif op == "upload":
            await asyncio.gather(*(put(path) for path in sorted(local.rglob("*")) if path.is_file()))
        else:
            await asyncio.gather(*(get(meta["path"]) for meta in await obstore.list(store, prefix).collect_async()))

    asyncio.run(transfer())


def _ferry(op: str, local: pathlib.Path, uri: str, ref_file: pathlib.Path, case: str) -> None:
    import ferry
    from ferry.core import malloc

    malloc.return_large_buffers()  # as Ferry's transfer processes do (ferry pod fetch, publish)
    store = ferry.Store(ferry.Settings(raw_data_prefix=uri, s3_addressing_style="path"))
    single = case == "big"
    if op == "upload":
        ref = store.upload_file(local, uri) if single else store.upload_directory(local, uri)
        ref_file.write_text(ref.to_json())
        return
    ref = ferry.BlobRef.model_validate_json(ref_file.read_text())
    if case == "partial":
        with ferry.use_store(store):
            ferry.Asset.from_blob(ref).restore(match=f"{PARTIAL}/**", to=local)
    else:
        (store.download_file if single else store.download_directory)(ref, local)


def worker(args: argparse.Namespace) -> None:
    local, bucket, prefix = pathlib.Path(args.local), args.bucket, args.prefix
    if args.tool == "ferry":
        _ferry(args.op, local, f"s3://{bucket}/{prefix}", pathlib.Path(args.ref), args.case)
        return
    local, prefix = _scope(args.case, args.op, local, prefix)
    single = args.case == "big"
    if args.tool == "obstore":
        _obstore(args.op, local, bucket, prefix, single)
        # An obstore thread may still be handing a result to the closed event loop; if Python finalizes
        # meanwhile, that thread is made to exit and the process aborts (about one run in three here).
        os._exit(0)
    elif args.tool.startswith("boto3"):
        threads = THREADS if args.tool == "boto3-threads" else 1
        if args.op == "upload":
            _boto3_upload(local, bucket, prefix, threads)
        else:
            _boto3_download(local, bucket, prefix, threads, single)
    else:
        raise SystemExit(f"no worker for {args.tool}")


def _cli_argv(tool: str, op: str, case: str, local: pathlib.Path, remote: str, endpoint: str,
              s5cmd: pathlib.Path | None) -> list[str]:
    """The AWS CLI's or s5cmd's command for one transfer (``op`` upload, sync or download);
    ``remote`` is ``s3://bucket/prefix``."""
    local, remote = _scope(case, op, local, remote)
    many = case != "big"
    if tool == "aws":
        aws = shutil.which("aws", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("aws")
        if aws is None:
            raise SystemExit("the AWS CLI is missing: .venv/bin/pip install awscli (or pass --tools without aws)")
        there = remote + "/" if many else remote
        source, target = (there, str(local)) if op == "download" else (str(local), there)
        verb = "sync" if op == "sync" else "cp"
        return [aws, "s3", verb, "--only-show-errors", *(["--recursive"] if many and verb == "cp" else []),
                source, target]
    command = [str(s5cmd), "--endpoint-url", endpoint, "--log", "error",
               *(["--numworkers", "64"] if tool == "s5cmd-64" else [])]
    if op == "sync":
        return [*command, "sync", f"{local}/", f"{remote}/"]
    if op == "upload":
        return [*command, "cp", f"{local}/*" if many else str(local), f"{remote}/" if many else remote]
    return [*command, "cp", f"{remote}/*" if many else remote, f"{local}/" if many else str(local)]


def s5cmd_binary() -> pathlib.Path:
    """s5cmd, built once from its Go module and cached. The module proxy refuses ``go install`` of
    it, so a throwaway module requires it and builds it, with the test cluster's build helpers."""
    from tests.cluster import binaries
    binary = binaries.cache_dir() / "bench" / f"s5cmd-{S5CMD}" / "s5cmd"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix="ferry-s5cmd-build-") as tmp:
        module = pathlib.Path(tmp)
        (module / "go.mod").write_text("module s5build\n")
        (module / "tools.go").write_text('//go:build tools\n\npackage tools\n\nimport _ "github.com/peak/s5cmd/v2"\n')
        binaries._run(["go", "get", f"github.com/peak/s5cmd/v2@{S5CMD}"], cwd=module)
        binaries._run(["go", "build", "-trimpath", "-ldflags",
                       f"-s -w -X github.com/peak/s5cmd/v2/version.Version={S5CMD}", "-o", str(module / "s5cmd"),
                       "github.com/peak/s5cmd/v2"], cwd=module)
        binaries._publish(module / "s5cmd", binary)
    return binary


# --- the driver ------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    seconds: float
    cpu_seconds: float
    server_cpu_seconds: float
    peak_rss_mib: float


def _server_cpu(pid: int) -> float:
    """CPU seconds used so far by MinIO (user + system)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(argv: list[str], server_pid: int) -> Run:
    import subprocess
    """Run ``argv`` to completion; its wall time, CPU time and peak RSS, and MinIO's CPU time.

    Call this in a small process (``_measure`` starts one): Linux carries the parent's peak RSS
    into a child it forks, so a child of the big driver would report at least the driver's size.
    """
    server_before, started = _server_cpu(server_pid), time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({process.returncode})")
    return Run(seconds, usage.ru_utime + usage.ru_stime, _server_cpu(server_pid) - server_before,
               usage.ru_maxrss / KiB)


def _call(argv: list[str], env: dict[str, str], log: pathlib.Path) -> str:
    import subprocess
    """Run ``argv`` with its output in ``log``; the output, or an error with its end."""
    with open(log, "wb") as out:
        code = subprocess.call(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = log.read_text(errors="replace")
    if code:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{output[-3000:]}")
    return output


def _measure(argv: list[str], env: dict[str, str], log: pathlib.Path, server_pid: int) -> Run:
    """``measure`` in a fresh small process, which writes its result as JSON to its last line."""
    os.sync()  # start from a clean page cache state: no writeback of the last run during this one
    output = _call([sys.executable, str(pathlib.Path(__file__).resolve()), "measure", str(server_pid), *argv], env, log)
    return Run(**json.loads(output.splitlines()[-1]))


def _digests(root: pathlib.Path) -> dict[str, tuple[int, str]]:
    found = {}
    for path in sorted(root.rglob("*") if root.is_dir() else [root]):
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(MiB):
                    digest.update(chunk)
            found[path.relative_to(root).as_posix() if root.is_dir() else ""] = (path.stat().st_size, digest.hexdigest())
    return found


def _make_files(root: pathlib.Path, count: int, size: int, per_folder: int) -> pathlib.Path:
    for i in range(count):
        path = root / f"d{i // per_folder:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def make_data(work: pathlib.Path, args: argparse.Namespace, sets: set[str]) -> dict[str, pathlib.Path]:
    data: dict[str, pathlib.Path] = {}
    if "small" in sets:
        data["small"] = _make_files(work / "small", args.files, args.file_kib * KiB, FOLDER)
    if "medium" in sets:
        data["medium"] = _make_files(work / "medium", args.medium_files, MiB, max(1, -(-args.medium_files // 10)))
    if "big" in sets:
        big = data["big"] = work / "big.bin"
        block = os.urandom(64 * MiB)  # random, so no layer can compress it; blocks differ by a counter
        with open(big, "wb") as f:
            for i in range(0, args.big_mib, 64):
                size = min(64, args.big_mib - i) * MiB
                f.write(i.to_bytes(8, "little") + block[8:size])
    return data


def _rewrite(root: pathlib.Path) -> dict[pathlib.Path, tuple[bytes, os.stat_result]]:
    """Give every ``FOLDER``-th file new random bytes of its size and an mtime 2 s later, so tools
    that compare mtimes with the bucket's see the change too; returns the originals, to put back."""
    originals = {}
    for path in sorted(path for path in root.rglob("*") if path.is_file())[::FOLDER]:
        originals[path] = (path.read_bytes(), path.stat())
        path.write_bytes(os.urandom(len(originals[path][0])))
        later = path.stat().st_mtime + 2
        os.utime(path, (later, later))
    return originals


def _put_back(originals: dict[pathlib.Path, tuple[bytes, os.stat_result]]) -> None:
    for path, (data, stat) in originals.items():
        path.write_bytes(data)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@dataclasses.dataclass
class Bench:
    """What every transfer needs, and the measurements so far."""
    work: pathlib.Path
    env: dict[str, str]
    server: S3
    s5cmd: pathlib.Path | None
    results: dict[tuple[str, str, str], list[Run]] = dataclasses.field(default_factory=dict)

    def argv(self, tool: str, op: str, case: str, local: pathlib.Path, prefix: str) -> list[str]:
        if tool in ("aws", "s5cmd", "s5cmd-64"):
            return _cli_argv(tool, op, case, local, f"s3://{self.server.bucket}/{prefix}", self.server.endpoint_url,
                             self.s5cmd)
        return [sys.executable, str(pathlib.Path(__file__).resolve()), "worker", tool, "upload" if op == "sync" else op,
                case, str(local), self.server.bucket, prefix, "--ref", str(self.work / "ref.json")]

    def time(self, tool: str, op: str, case: str, local: pathlib.Path, prefix: str, direction: str = "") -> None:
        result = _measure(self.argv(tool, op, case, local, prefix), self.env, self.work / "log.txt",
                          self.server.server.process.pid)
        self.results.setdefault((case, tool, direction or op), []).append(result)
        print(f"  {case:11} {tool:13} {direction or op:11} {result.seconds:7.2f} s  "
              f"rss {result.peak_rss_mib:6.0f} MiB", flush=True)

    def run(self, tool: str, op: str, case: str, local: pathlib.Path, prefix: str) -> None:
        """Untimed: a case's setup, or the download that checks an upload."""
        _call(self.argv(tool, op, case, local, prefix), self.env, self.work / "log.txt")


def run_case(bench: Bench, case: str, tool: str, prefix: str, source: pathlib.Path,
             expected: dict[str, tuple[int, str]]) -> None:
    """Time one tool on one case, then compare what it downloads with what it should (the originals,
    or the changed files after an incremental upload)."""
    out = bench.work / "out" / source.name
    if case == "incremental":
        bench.time(tool, "sync", case, source, prefix, "full")
        originals = _rewrite(source)
        bench.time(tool, "sync", case, source, prefix, "incremental")
        expected = _digests(source)
        _put_back(originals)
        bench.run(tool, "download", case, out, prefix)
    elif case == "partial":
        bench.run(tool, "upload", case, source, prefix)
        bench.time(tool, "download", case, out, prefix)
        expected = {path: value for path, value in expected.items() if path.startswith(f"{PARTIAL}/")}
    else:
        bench.time(tool, "upload", case, source, prefix)
        bench.time(tool, "download", case, out, prefix)
    got = _digests(out)
    if got != expected:
        wrong = sorted(path for path in got.keys() | expected.keys() if got.get(path) != expected.get(path))
        raise RuntimeError(f"{tool} on {case}: {len(got)} files downloaded, {len(expected)} expected, "
                           f"{len(wrong)} missing, extra or different: {wrong[:5]}")
    shutil.rmtree(out) if out.is_dir() else out.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="number of small files (default 10,000)")
    parser.add_argument("--file-kib", type=int, default=4, help="size of each small file in KiB (default 4)")
    parser.add_argument("--medium-files", type=int, default=1_000, help="number of 1 MiB files (default 1,000)")
    parser.add_argument("--big-mib", type=int, default=2048, help="size of the large file in MiB (default 2048)")
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                        help=f"comma-separated, from {','.join(TOOLS)} (default: the first five)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {','.join(CASES)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each transfer; the median is reported")
    parser.add_argument("--tmp", default=None, help="parent of the temporary directory (a local disk)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--plot", default=None, help="also draw the ratios as a bar chart in this PNG (matplotlib)")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("worker", help=argparse.SUPPRESS)
    for name in ("tool", "op", "case", "local", "bucket", "prefix"):
        run.add_argument(name)
    run.add_argument("--ref", default="")
    meter = sub.add_parser("measure", help=argparse.SUPPRESS)
    meter.add_argument("server_pid", type=int)
    meter.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command == "worker":
        worker(args)
        return
    if args.command == "measure":
        print(json.dumps(dataclasses.asdict(measure(args.argv, args.server_pid))))
        return

    tools = [t for t in args.tools.split(",") if t]
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(tools) - set(TOOLS) | set(cases) - set(CASES):
        parser.error(f"unknown tools or cases: {', '.join(sorted(unknown))}")
    sys.path.insert(0, str(ROOT))
    from tests.cluster import s3 as s3_server
    from tests.cluster.processes import interrupt_on_sigterm

    interrupt_on_sigterm()  # stopped by timeout or kill, it still stops MinIO

    s5cmd = s5cmd_binary() if {"s5cmd", "s5cmd-64"} & set(tools) else None
    if "ferry" in tools:  # run from bytecode, as installed (pip compiles it), not compiled anew each run
        import compileall  # (under PYTHONDONTWRITEBYTECODE=1, Python would not write it)
        compileall.compile_dir(ROOT / "runtime" / "ferry", quiet=1)
    args.load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())

    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-bench-", dir=args.tmp))
    server = None
    try:
        print(f"preparing data in {work} ...", flush=True)
        data = make_data(work, args, {DATA[case] for case in cases})
        expected = {name: _digests(path) for name, path in data.items()}
        (work / "out").mkdir()
        server = s3_server.start(work / "minio")
        client = server.client()
        env = {**os.environ, **server.env(), "AWS_CONFIG_FILE": str(work / "no-aws-config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "runtime"), os.environ.get("PYTHONPATH")]))}
        for name in [n for n in os.environ if n.startswith("FERRY_")]:
            env.pop(name)
        bench = Bench(work, env, server, s5cmd)
        floor = _measure(["true"], env, work / "log.txt", server.server.process.pid).peak_rss_mib
        print(f"peak RSS of a process that does nothing, as measured here: {floor:.0f} MiB", flush=True)
        for repeat in range(args.repeat):
            for case in cases:
                for tool in [t for t in tools if t in CASE_TOOLS.get(case, TOOLS)]:
                    prefix = f"{tool}/{case}/{repeat}"
                    run_case(bench, case, tool, prefix, data[DATA[case]], expected[DATA[case]])
                    (work / "ref.json").unlink(missing_ok=True)
                    _delete_prefix(client, server.bucket, prefix)
        report(bench.results, args, cases, tools)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _delete_prefix(client, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def _moved(args: argparse.Namespace, case: str, direction: str) -> tuple[int, int]:
    """Files and bytes a transfer moves: an incremental upload only the changed files."""
    count, size = {"medium": (args.medium_files, MiB), "big": (1, args.big_mib * MiB)}.get(
        case, (args.files, args.file_kib * KiB))
    if case == "partial":
        count = min(args.files, FOLDER)
    elif direction == "incremental":
        count = len(range(0, args.files, FOLDER))
    return count, count * size


def report(results: dict[tuple[str, str, str], list[Run]], args: argparse.Namespace, cases: list[str],
           tools: list[str]) -> None:
    import statistics
    small = f"{args.files:,} files of {args.file_kib} KiB"
    label = {"small": small, "medium": f"{args.medium_files:,} files of 1 MiB", "incremental": f"{small}, 1 % changed",
             "big": f"1 file of {args.big_mib:,} MiB", "partial": f"{PARTIAL}/ of {small}"}
    rows = []
    print(f"\ncores: {os.cpu_count()}, median of {args.repeat} run(s); wall time includes process start; "
          f"load average before and after: {args.load_before}, {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| case | tool | direction | seconds | files/s | MB/s | peak RSS (MiB) | client CPU s | MinIO CPU s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in cases:
        for (c, tool, op), runs in results.items():
            if c != case:
                continue
            count, total = _moved(args, case, op)
            seconds = statistics.median(r.seconds for r in runs)
            row = dict(case=case, tool=tool, op=op, seconds=seconds, files_per_s=count / seconds,
                       mb_per_s=total / seconds / 1e6, peak_rss_mib=max(r.peak_rss_mib for r in runs),
                       cpu_s=statistics.median(r.cpu_seconds for r in runs),
                       server_cpu_s=statistics.median(r.server_cpu_seconds for r in runs))
            rows.append(row)
            print(f"| {label[case]} | {tool} | {op} | {seconds:.2f} | {row['files_per_s']:,.{0 if count > 1 else 3}f} | "
                  f"{row['mb_per_s']:,.1f} | {row['peak_rss_mib']:,.0f} | {row['cpu_s']:.1f} | {row['server_cpu_s']:.1f} |")
    ratios, others, increments = _ratios(rows, tools)
    if ratios:
        print("\nratios (Ferry's time ÷ the other's; above 1 means Ferry is slower)\n")
        print(f"| case | direction | {' | '.join(f'÷ {other}' for other in others)} |")
        print(f"| --- | --- |{' ---: |' * len(others)}")
        for row in ratios:
            cells = [f"{row['ferry_over'][o]:.2f}" if o in row["ferry_over"] else "—" for o in others]
            print(f"| {row['case']} | {row['op']} | {' | '.join(cells)} |")
    if increments:
        print("\nincremental upload ÷ full upload, per tool\n")
        print("| tool | full s | incremental s | incremental ÷ full |\n| --- | ---: | ---: | ---: |")
        for row in increments:
            print(f"| {row['tool']} | {row['full_s']:.2f} | {row['incremental_s']:.2f} | "
                  f"{row['incremental_over_full']:.3f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(dict(results=rows, ratios=ratios, incremental=increments),
                                                      indent=1))
    if args.plot and ratios:
        plot(ratios, others, args.plot)


def _ratios(rows: list[dict], tools: list[str]) -> tuple[list[dict], list[str], list[dict]]:
    """Ferry's time ÷ each other tool's per case and direction (``s5cmd best``: the faster s5cmd),
    the tools compared, and each tool's incremental upload ÷ its full one."""
    seconds = {(row["case"], row["op"], row["tool"]): row["seconds"] for row in rows}
    others = [tool for tool in tools if tool != "ferry"]
    if {"s5cmd", "s5cmd-64"} <= set(others):
        others.insert(max(others.index("s5cmd"), others.index("s5cmd-64")) + 1, "s5cmd best")
    ratios, increments = [], []
    for case, op, tool in seconds:
        if tool == "ferry":
            theirs = {other: seconds[case, op, other] for other in others if (case, op, other) in seconds}
            if s5cmds := [theirs[name] for name in ("s5cmd", "s5cmd-64") if name in theirs]:
                theirs["s5cmd best"] = min(s5cmds)
            if over := {other: seconds[case, op, tool] / s for other, s in theirs.items() if other in others}:
                ratios.append(dict(case=case, op=op, ferry_over=over))
    for tool in tools:
        if full := seconds.get(("incremental", "full", tool)):
            again = seconds["incremental", "incremental", tool]
            increments.append(dict(tool=tool, full_s=full, incremental_s=again, incremental_over_full=again / full))
    return ratios, others, increments


def plot(ratios: list[dict], others: list[str], path: str) -> None:
    """One group of bars per case and direction, one bar per other tool, each from parity (1) up
    where Ferry is slower and down where it is faster, on a log scale so that both look alike."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    width = 0.8 / len(others)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(ratios)), 4.8))
    for i, other in enumerate(others):
        values = [row["ferry_over"].get(other, float("nan")) for row in ratios]
        bars = axes.bar([g + (i - (len(others) - 1) / 2) * width for g in range(len(ratios))],
                        [value - 1 for value in values], width, bottom=1, label=f"÷ {other}")
        axes.bar_label(bars, labels=[f"{value:.2f}" if value == value else "" for value in values], fontsize=7,
                       rotation=90, padding=2)
    axes.axhline(1.0, color="black", linewidth=1)
    axes.set_yscale("log")
    values = [1.0, *(value for row in ratios for value in row["ferry_over"].values())]
    axes.set_ylim(min(values) / 1.6, max(values) * 2)  # room for the labels and the legend
    axes.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
    axes.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(range(len(ratios)), [f"{row['case']}\n{row['op']}" for row in ratios])
    axes.set_ylabel("Ferry's time ÷ the other's")
    axes.set_title("Ferry's time ÷ the other's (above 1: Ferry is slower)")
    axes.legend(fontsize=8, ncols=len(others), loc="upper center")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()

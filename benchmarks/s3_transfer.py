"""Ferry against the AWS CLI and plain boto3: upload and download speed and memory on S3.

Two cases, each uploaded then downloaded by every tool against the local S3 server (MinIO, started
the way the tests start it): (a) many small files, 10,000 of 4 KiB in 100 folders, and (b) one
large file of 2 GiB. Each transfer runs in its own child process, so its wall time, CPU time and
peak RSS (``ru_maxrss`` from ``wait4``) belong to that tool alone; the wall time includes the
interpreter's start and imports, as a user would see it. After each download, untimed, the files
are compared with the originals (count, size, sha256), so no tool is timed on a broken transfer.

Tools:

- ``ferry``: ``Store.upload_directory``/``download_directory`` and ``upload_file``/``download_file``,
  so its numbers include what Ferry guarantees and the others do not: every file hashed (sha256)
  on upload, a manifest written last, every file's size and sha256 checked on download, and each
  file written to a temporary name and renamed into place.
- ``aws``: ``aws s3 cp --recursive`` (and plain ``aws s3 cp`` for the large file), defaults as
  installed (10 concurrent requests).
- ``boto3``: the plain way: one client, a loop calling ``upload_file``/``download_file``
  (``list_objects_v2`` to find what to download). For the large file, ``upload_file``/
  ``download_file`` with their defaults, which already move parts in parallel.
- ``boto3-threads``: the same calls for the small files on a pool of 32 threads sharing one
  client (a pool of 32 connections), the usual first step past the loop. Not run on the large
  file, where it is the same as ``boto3``.

The AWS CLI is not a dependency of Ferry; install it once into the project's environment:

    .venv/bin/pip install awscli

Run from the repository root (``--repeat 3`` reports the median of three runs of each transfer):

    .venv/bin/python benchmarks/s3_transfer.py                           # full size
    .venv/bin/python benchmarks/s3_transfer.py --files 1000 --big-mib 256  # quick
    .venv/bin/python benchmarks/s3_transfer.py --tools ferry --cases small

Data, MinIO's data and downloads live in one temporary directory (``--tmp`` picks where, on a
local disk), removed at the end. MB is 10^6 bytes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
KiB, MiB = 1024, 1024 * 1024
TOOLS = ("ferry", "aws", "boto3", "boto3-threads")
CASES = ("small", "big")
THREADS = 32


# --- the workers: one transfer per process ---------------------------------------------------

def _boto3_client(pool: int = 10):
    import boto3
    import botocore.config
    return boto3.client("s3", config=botocore.config.Config(max_pool_connections=pool))


def _boto3_upload(local: pathlib.Path, bucket: str, prefix: str, threads: int) -> None:
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


def _ferry(op: str, local: pathlib.Path, uri: str, ref_file: pathlib.Path, single: bool) -> None:
    import ferry
    store = ferry.Store(ferry.Settings(raw_data_prefix=uri, s3_addressing_style="path"))
    if op == "upload":
        ref = store.upload_file(local, uri) if single else store.upload_directory(local, uri)
        ref_file.write_text(ref.to_json())
    else:
        ref = ferry.BlobRef.model_validate_json(ref_file.read_text())
        (store.download_file if single else store.download_directory)(ref, local)


def worker(args: argparse.Namespace) -> None:
    local, bucket, prefix = pathlib.Path(args.local), args.bucket, args.prefix
    single = args.case == "big"
    if args.tool == "ferry":
        _ferry(args.op, local, f"s3://{bucket}/{prefix}", pathlib.Path(args.ref), single)
    elif args.tool.startswith("boto3"):
        threads = THREADS if args.tool == "boto3-threads" else 1
        if args.op == "upload":
            _boto3_upload(local, bucket, prefix, threads)
        else:
            _boto3_download(local, bucket, prefix, threads, single)
    else:
        raise SystemExit(f"no worker for {args.tool}")


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


def _measure(argv: list[str], env: dict[str, str], log: pathlib.Path, server_pid: int) -> Run:
    """``measure`` in a fresh small process, which writes its result as JSON to its last line."""
    os.sync()  # start from a clean page cache state: no writeback of the last run during this one
    with open(log, "wb") as out:
        code = subprocess.call([sys.executable, str(pathlib.Path(__file__).resolve()), "measure", str(server_pid),
                                *argv], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    output = log.read_text(errors="replace")
    if code:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{output[-3000:]}")
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


def make_data(work: pathlib.Path, files: int, file_kib: int, big_mib: int, cases: list[str]) -> dict[str, pathlib.Path]:
    data: dict[str, pathlib.Path] = {}
    if "small" in cases:
        small = data["small"] = work / "small"
        for i in range(files):
            path = small / f"d{i // 100:03d}" / f"f{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(file_kib * KiB))
    if "big" in cases:
        big = data["big"] = work / "big.bin"
        block = os.urandom(64 * MiB)  # random, so no layer can compress it; blocks differ by a counter
        with open(big, "wb") as f:
            for i in range(0, big_mib, 64):
                size = min(64, big_mib - i) * MiB
                f.write(i.to_bytes(8, "little") + block[8:size])
    return data


def _aws_argv(op: str, case: str, local: pathlib.Path, remote: str) -> list[str]:
    aws = shutil.which("aws", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        raise SystemExit("the AWS CLI is missing: .venv/bin/pip install awscli (or pass --tools without aws)")
    source, target = (str(local), remote) if op == "upload" else (remote, str(local))
    return [aws, "s3", "cp", "--only-show-errors", *(["--recursive"] if case == "small" else []), source, target]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="number of small files (default 10,000)")
    parser.add_argument("--file-kib", type=int, default=4, help="size of each small file in KiB (default 4)")
    parser.add_argument("--big-mib", type=int, default=2048, help="size of the large file in MiB (default 2048)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, from {','.join(TOOLS)}")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from small,big")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each transfer; the median is reported")
    parser.add_argument("--tmp", default=None, help="parent of the temporary directory (a local disk)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
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

    args.load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())

    work = pathlib.Path(tempfile.mkdtemp(prefix="ferry-bench-", dir=args.tmp))
    server = None
    try:
        print(f"preparing data in {work} ...", flush=True)
        data = make_data(work, args.files, args.file_kib, args.big_mib, cases)
        expected = {case: _digests(path) for case, path in data.items()}
        server = s3_server.start(work / "minio")
        client = server.client()
        env = {**os.environ, **server.env(), "AWS_CONFIG_FILE": str(work / "no-aws-config"),
               "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "runtime"), os.environ.get("PYTHONPATH")]))}
        for name in [n for n in os.environ if n.startswith("FERRY_")]:
            env.pop(name)
        floor = _measure(["true"], env, work / "log.txt", server.server.process.pid).peak_rss_mib
        print(f"peak RSS of a process that does nothing, as measured here: {floor:.0f} MiB", flush=True)
        results: dict[tuple[str, str, str], list[Run]] = {}
        for repeat in range(args.repeat):
            for case in cases:
                for tool in tools:
                    if tool == "boto3-threads" and case == "big":
                        continue
                    prefix = f"{tool}/{case}/{repeat}"
                    remote = f"s3://{server.bucket}/{prefix}" + ("/" if case == "small" else "")
                    local_out = work / "out" / ("small" if case == "small" else "big.bin")
                    ref = work / "ref.json"
                    for op, local in (("upload", data[case]), ("download", local_out)):
                        if tool == "aws":
                            argv = _aws_argv(op, case, local, remote)
                        else:
                            argv = [sys.executable, str(pathlib.Path(__file__).resolve()), "worker", tool, op, case,
                                    str(local), server.bucket, prefix, "--ref", str(ref)]
                        result = _measure(argv, env, work / "log.txt", server.server.process.pid)
                        results.setdefault((case, tool, op), []).append(result)
                        print(f"  {case:5} {tool:13} {op:8} {result.seconds:7.2f} s  "
                              f"rss {result.peak_rss_mib:6.0f} MiB", flush=True)
                    got = _digests(local_out)
                    if got != expected[case]:
                        wrong = [k for k in expected[case] if got.get(k) != expected[case][k]]
                        raise RuntimeError(f"{tool} downloaded {len(got)} files, {len(wrong)} wrong: {wrong[:5]}")
                    shutil.rmtree(local_out) if local_out.is_dir() else local_out.unlink()
                    ref.unlink(missing_ok=True)
                    _delete_prefix(client, server.bucket, prefix)
        report(results, data, args, cases)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _delete_prefix(client, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def report(results: dict[tuple[str, str, str], list[Run]], data: dict[str, pathlib.Path],
           args: argparse.Namespace, cases: list[str]) -> None:
    sizes = {"small": (args.files, args.files * args.file_kib * KiB), "big": (1, args.big_mib * MiB)}
    label = {"small": f"{args.files:,} files of {args.file_kib} KiB", "big": f"1 file of {args.big_mib:,} MiB"}
    rows = []
    print(f"\ncores: {os.cpu_count()}, median of {args.repeat} run(s); wall time includes process start; "
          f"load average before and after: {args.load_before}, {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| case | tool | direction | seconds | files/s | MB/s | peak RSS (MiB) | client CPU s | MinIO CPU s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in cases:
        count, total = sizes[case]
        for (c, tool, op), runs in results.items():
            if c != case:
                continue
            seconds = statistics.median(r.seconds for r in runs)
            row = dict(case=case, tool=tool, op=op, seconds=seconds, files_per_s=count / seconds,
                       mb_per_s=total / seconds / 1e6, peak_rss_mib=max(r.peak_rss_mib for r in runs),
                       cpu_s=statistics.median(r.cpu_seconds for r in runs),
                       server_cpu_s=statistics.median(r.server_cpu_seconds for r in runs))
            rows.append(row)
            print(f"| {label[case]} | {tool} | {op} | {seconds:.2f} | {row['files_per_s']:,.{0 if count > 1 else 3}f} | "
                  f"{row['mb_per_s']:,.1f} | {row['peak_rss_mib']:,.0f} | {row['cpu_s']:.1f} | {row['server_cpu_s']:.1f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

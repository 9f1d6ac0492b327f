"""Ferry's quickstart: three tasks passing a directory and an asset.

Run it here, with no cluster:    ferry run examples/quickstart.py:pipeline --days 3
Write it for a cluster:          ferry compile examples/quickstart.py:pipeline > pipeline.yaml
"""

import os
import pathlib

import ferry


@ferry.task
def collect(days: int) -> ferry.Directory:
    """Write one small report per day into a directory."""
    reports = pathlib.Path("reports")
    reports.mkdir()
    for day in range(1, days + 1):
        (reports / f"day-{day}.csv").write_text(f"day,visits\n{day},{day * 100}\n")
    return ferry.Directory(reports)


@ferry.task
def total(reports: ferry.Directory) -> int:
    """Add up the visits of every report (the directory is downloaded on first use)."""
    visits = 0
    for name in sorted(os.listdir(reports)):
        with open(os.path.join(reports, name)) as report:
            visits += int(report.read().splitlines()[1].split(",")[1])
    return visits


@ferry.task
def summarize(reports: ferry.Directory, visits: int) -> ferry.File:
    """Write a summary file that names each report."""
    summary = pathlib.Path("summary.txt")
    lines = [f"{len(reports.listdir())} reports, {visits} visits"]
    lines += [f"- {f.remote_source.rsplit('/', 1)[-1]}" for f in reports.listdir()]
    summary.write_text("\n".join(lines) + "\n")
    return ferry.File(summary)


@ferry.workflow
def pipeline(days: int = 7) -> tuple[int, ferry.File]:
    reports = collect(days=days)
    visits = total(reports=reports)
    return visits, summarize(reports=reports, visits=visits)


if __name__ == "__main__":
    print(pipeline(days=3))

"""Ferry's quickstart: tasks passing a directory, values and an asset, and a map over a directory's files.

Run it here, with no cluster:    ferry run examples/quickstart.py:pipeline --days 3
Run it on a cluster:             ferry run --remote examples/quickstart.py:pipeline --store s3://bucket/ferry
Write it for kubectl create:     ferry compile examples/quickstart.py:pipeline > pipeline.yaml
"""

import os
import pathlib
import typing

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
def count(report: ferry.File) -> int:
    """The visits in one report. Mapped over the directory, it runs once per file, each in a
    process (a pod on a cluster) of its own that receives only its file."""
    return int(open(report).read().splitlines()[1].split(",")[1])


@ferry.task
def total(counts: list[int]) -> int:
    """Add up the visits of every report: the map's outputs, gathered in file order."""
    return sum(counts)


@ferry.task
def render(reports: ferry.Directory, visits: int) -> ferry.Asset:
    """Draw one text chart per report and a summary, published together as an asset."""
    charts = pathlib.Path("charts")
    charts.mkdir()
    for report in reports.listdir():  # Files that download when opened
        day, count = open(report).read().splitlines()[1].split(",")
        (charts / f"day-{day}.txt").write_text("#" * (int(count) // 100) + "\n")
    pathlib.Path("summary.txt").write_text(f"{len(reports.listdir())} days, {visits} visits\n")
    return ferry.asset(match="{summary.txt,charts/**}")


@ferry.task
def index(report: ferry.Asset) -> ferry.File:
    """Restore only the charts from the asset and list them in one file."""
    charts = report.restore(match="charts/*")
    lines = [f"{path}: {local.read_text().strip()}" for path, local in sorted(charts.items())]
    pathlib.Path("index.txt").write_text("\n".join(lines) + "\n")
    return ferry.File("index.txt")


class Results(typing.NamedTuple):
    """The workflow's outputs, named by these fields (``ferry run`` prints ``visits = 2100``)."""

    visits: int
    report: ferry.Asset
    index: ferry.File


@ferry.workflow
def pipeline(days: int = 7) -> Results:
    reports = collect(days=days)
    visits = total(counts=count.map(report=reports))
    report = render(reports=reports, visits=visits)
    return Results(visits, report, index(report=report))


if __name__ == "__main__":
    print(pipeline(days=3))

"""The cache as ``ferry run`` uses it: keyed on the code the task runs, shown as hits."""

import os
import re
import subprocess
import sys

PIPELINE = '''
import pathlib

import ferry


def sigmoid(x):
    return x * 2


@ferry.task(cache=True)
def total(x: int, counter: str) -> tuple[int, ferry.File]:
    with open(counter, "a") as out:
        out.write("ran\\n")
    pathlib.Path("total.txt").write_text(str(sigmoid(x)))
    return sigmoid(x), ferry.File("total.txt")


@ferry.workflow
def pipeline(counter: str, x: int = 3) -> tuple[int, ferry.File]:
    return total(x=x, counter=counter)
'''


def test_a_helper_edit_misses_the_cache_and_an_overwrite_is_kept_under_the_code_that_made_it(tmp_path):
    """Only the task function's source was keyed: editing ``sigmoid`` served the old result, and
    after ``--overwrite-cache`` and reverting the edit the original key held the edited code's result."""
    counter = tmp_path / "counter"
    pipeline = tmp_path / "pipeline.py"
    env = {**os.environ, "FERRY_RAW_DATA_PREFIX": (tmp_path / "raw").as_uri()}

    def run(body: str, *flags: str) -> tuple[str, str]:
        pipeline.write_text(PIPELINE.replace("return x * 2", body))
        done = subprocess.run([sys.executable, "-m", "ferry", "run", "pipeline.py:pipeline", "--counter",
                               str(counter), *flags], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return re.search(r"^o0 = (\d+)$", done.stdout, re.M).group(1), done.stderr

    def runs() -> int:
        return counter.read_text().count("ran")

    first, shown = run("return x * 2")
    first_run = re.search(r"\b(pipeline-[0-9a-f]{8})\b", shown).group(1)
    assert (first, runs()) == ("6", 1)
    assert "▶" in shown and "⇪" in shown
    edited, _ = run("return x * 3")
    assert (edited, runs()) == ("9", 2), "an edited helper is another cache entry"
    overwritten, _ = run("return x * 3", "--overwrite-cache")
    assert (overwritten, runs()) == ("9", 3)
    reverted, shown = run("return x * 2")
    assert (reverted, runs()) == ("6", 3), "the original code's entry still holds its own result"
    events = [line for line in shown.splitlines() if "task total" in line]
    assert len(events) == 1 and f"≡ task total cached (from {first_run})" in events[0], shown

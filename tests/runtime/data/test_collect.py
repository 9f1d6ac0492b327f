"""Emptying a deleted workflow's folder in a real store, with outputs published by the SDK: nothing
still referenced goes (by another workflow, a cache entry, a derived asset's manifest); the rest does."""

from __future__ import annotations

import json
import os
import pathlib
import time

import pytest

import ferry
from ferry import cli
from ferry.cluster import remote
from ferry.data import cleanup, collect

GONE, LIVE = "0f0e0d0c-0000-4000-8000-00000000000a", "0f0e0d0c-0000-4000-8000-00000000000b"


def publish_as(store: ferry.Store, folder: str, files: dict[str, str], tmp_path: pathlib.Path) -> ferry.Asset:
    """An asset published by a task of the workflow owning ``folder``."""
    workdir = tmp_path / folder.rstrip("/").rsplit("/", 1)[-1] / str(len(files))
    for path, text in files.items():
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text(text)
    task_store = ferry.Store(store.settings, output_prefix=folder.rstrip("/"))
    with ferry.use_store(task_store):
        return ferry.asset(list(files), at=workdir)


@pytest.fixture
def namespace(store, tmp_path):
    """The folder of a namespace: a deleted workflow's outputs, some still referenced, and a live one's."""
    root = f"{store.raw_data_prefix}/team"
    gone, live = cleanup.folder(root, GONE), cleanup.folder(root, LIVE)
    outputs = {name: publish_as(store, gone, {f"{name}/a.txt": name, f"{name}/b.txt": name}, tmp_path)
               for name in ("read", "cached", "derived", "free", "free2")}
    with ferry.use_store(ferry.Store(store.settings, output_prefix=live.rstrip("/"))):
        derived = ferry.asset({"x.txt": outputs["derived"]["derived/a.txt"]})  # a manifest naming GONE's object
    store.backend(root).write_bytes(f"{root}/cache/0123.json", json.dumps(
        {"outputs": {"o": {"kind": "asset", "uri": outputs["cached"].uri}}}).encode())
    live_workflow = {"metadata": {"uid": LIVE, "name": "reader"},
                     "spec": {"tasks": [{"name": "t", "inputs": [{"name": "i", "uri": outputs["read"].uri}]}]},
                     "status": {"outputs": {"d": {"kind": "asset", "uri": derived.uri}}}}
    return root, outputs, derived, live_workflow


def stored(store: ferry.Store, uri: str) -> list[str]:
    return sorted(info.path for info in store.backend(uri).list(uri))


def test_what_is_referenced_stays_and_the_rest_goes(store, namespace, tmp_path):
    root, outputs, derived, live_workflow = namespace
    gone = cleanup.folder(root, GONE)
    before = stored(store, gone)
    dry = collect.collect(store, root, [gone], [live_workflow], dry_run=True)
    assert stored(store, gone) == before and dry.deleted > 0
    outcome = collect.collect(store, root, [gone], [live_workflow])
    assert (outcome.deleted, outcome.kept) == (dry.deleted, dry.kept)
    for name in ("read", "cached"):  # named by a live workflow, or by a cache entry: whole
        restored = outputs[name].restore(to=tmp_path / "restored" / name)
        assert sorted(p.read_text() for p in restored.values()) == [name, name]
    assert derived["x.txt"].restore(to=tmp_path / "restored" / "x").read_text() == "derived"
    for name in ("free", "free2"):  # nothing names them: gone, manifest and files
        assert not store.exists(outputs[name].uri)
    assert not store.exists(f"{outputs['derived'].uri}/.ferry-manifest.json"), "only the object a manifest names stays"
    assert outcome.deleted == len(before) - outcome.kept and outcome.bytes > 0


@pytest.mark.parametrize("store", ["local"], indirect=True)  # ages are set by hand on files
def test_ferry_gc_empties_old_folders_of_deleted_workflows(store, namespace, monkeypatch, capsys):
    root, outputs, derived, live_workflow = namespace
    monkeypatch.setattr(remote, "kubectl", lambda *args, context=None, input=None:
                        json.dumps({"items": [live_workflow]}) if args[0] == "get" else "")
    argv = ["gc", "-n", "team", "--store", store.raw_data_prefix, "--older-than", "1h"]
    assert cli.main(argv) == 0
    assert "0 folders" in capsys.readouterr().out, "written just now: too young"
    old = time.time() - 7200
    for path in pathlib.Path(root.removeprefix("file://")).rglob("*"):
        os.utime(path, (old, old))
    assert cli.main([*argv, "--dry-run"]) == 0
    assert "1 folders of workflows gone and older than 1h" in capsys.readouterr().out
    assert store.exists(outputs["free"].uri)
    assert cli.main(argv) == 0
    assert not store.exists(outputs["free"].uri) and store.exists(outputs["read"].uri)
    assert store.exists(derived.uri) and store.exists(f"{root}/cache/0123.json"), "live and cache untouched"


def test_what_a_task_wrote_never_makes_the_cleanup_read_outside_the_namespace_folder(store, namespace, monkeypatch):
    """Cache entries and status are a task's to write: a directory they name elsewhere (an internal
    service, this machine's files) is not fetched for its manifest."""
    root, outputs, derived, live_workflow = namespace
    store.backend(root).write_bytes(f"{root}/cache/hostile.json", json.dumps({"outputs": {
        "a": {"kind": "directory", "uri": "http://127.0.0.1:9/latest/meta-data"},
        "b": {"kind": "asset", "uri": "file:///etc"}}}).encode())
    asked, backend = [], store.backend
    monkeypatch.setattr(store, "backend", lambda uri: asked.append(uri) or backend(uri))
    collect.collect(store, root, [cleanup.folder(root, GONE)], [live_workflow], dry_run=True)
    assert asked and all(uri.startswith(f"{root}/") for uri in asked), [u for u in asked if not u.startswith(root)]


def test_gc_refuses_an_age_without_a_unit(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["gc", "--older-than", "30"])
    assert exited.value.code == 2 and "give a number and a unit" in capsys.readouterr().err

import datetime

import pytest

from ferry.data import cleanup

ROOT = "s3://b/ferry/team"
A, B = "0f0e0d0c-0000-4000-8000-00000000000a", "0f0e0d0c-0000-4000-8000-00000000000b"


def test_a_uri_named_keeps_itself_and_everything_under_it_only():
    kept = {f"{ROOT}/{A}/t/1/d", f"{ROOT}/{A}/t/1/f.csv"}
    assert cleanup.covered(f"{ROOT}/{A}/t/1/d", kept)
    assert cleanup.covered(f"{ROOT}/{A}/t/1/d/.ferry-manifest.json", kept)
    assert cleanup.covered(f"{ROOT}/{A}/t/1/d/sub/x", kept)
    assert cleanup.covered(f"{ROOT}/{A}/t/1/f.csv", kept)
    assert not cleanup.covered(f"{ROOT}/{A}/t/1/dx/y", kept), "a sibling sharing a prefix of letters is not under it"
    assert not cleanup.covered(f"{ROOT}/{A}/t/1/f.csv.bak", kept)
    assert not cleanup.covered(f"{ROOT}/{A}/t/2/d/x", kept)


def test_manifests_go_first():
    objects = [f"{ROOT}/{A}/t/1/d/a", f"{ROOT}/{A}/t/1/d/.ferry-manifest.json", f"{ROOT}/{A}/t/1/v"]
    assert cleanup.doomed(objects, set()) == [f"{ROOT}/{A}/t/1/d/.ferry-manifest.json", f"{ROOT}/{A}/t/1/d/a",
                                              f"{ROOT}/{A}/t/1/v"]
    assert cleanup.doomed(objects, {f"{ROOT}/{A}/t/1/d"}) == [f"{ROOT}/{A}/t/1/v"]


def test_uris_are_found_wherever_a_document_names_them():
    workflow = {"spec": {"tasks": [{"name": "x", "inputs": [{"name": "d", "uri": f"{ROOT}/{A}/t/1/d"}]}]},
                "status": {"tasks": {"x": {"outputs": {"o": {"kind": "asset", "uri": f"{ROOT}/{B}/x/1/o"}},
                                           "result": {"uri": f"{ROOT}/{B}/x/1/.ferry-result.json"}}}},
                "other": ["s3://elsewhere/z", f"{ROOT}/{A}/loose", 3, None,
                          {"kind": "directory", "uri": "http://169.254.169.254/latest"}]}
    assert sorted(cleanup.named_uris(workflow, f"{ROOT}/{A}/")) == [f"{ROOT}/{A}/loose", f"{ROOT}/{A}/t/1/d"]
    assert list(cleanup.blob_uris(workflow, f"{ROOT}/")) == [f"{ROOT}/{B}/x/1/o"], "outside the folder: never read"


def test_the_plan_of_a_deleted_workflow_carries_only_what_references_its_folder():
    me = {"metadata": {"uid": A}, "status": {"outputs": {"o": {"kind": "file", "uri": f"{ROOT}/{A}/t/1/o"}}}}
    reader = {"metadata": {"uid": B}, "spec": {"tasks": [{"inputs": [{"uri": f"{ROOT}/{A}/t/1/o"}]}]},
              "status": {"tasks": {"y": {"outputs": {"d": {"kind": "directory", "uri": f"{ROOT}/{B}/y/1/d"}}}}}}
    stranger = {"metadata": {"uid": "c"}, "status": {"outputs": {"d": {"kind": "directory", "uri": f"{ROOT}/c/d"}}}}
    plan = cleanup.plan(ROOT, A, [me, reader, stranger])
    assert plan == {"root": ROOT, "folder": f"{ROOT}/{A}/", "kept": [f"{ROOT}/{A}/t/1/o", f"{ROOT}/{B}/y/1/d"],
                    "blobs": [f"{ROOT}/{B}/y/1/d"]}


def test_gc_takes_only_old_folders_of_workflows_that_are_gone():
    old, new = 1_000.0, 5_000.0
    listing = [(f"{A}/t/1/o", old), (f"{A}/t/1/p", old),  # gone, old: taken
               (f"{B}/t/1/o", old), (f"{B}/t/2/o", new),  # gone, but written since: kept
               ("0f0e0d0c-0000-4000-8000-00000000000c/t/1/o", old),  # still there
               ("0f0e0d0c-0000-4000-8000-00000000000d/t/1/o", None),  # age unknown
               ("cache/abc.json", old), ("loose-object", old)]  # not a workflow's folder
    live = {"0f0e0d0c-0000-4000-8000-00000000000c"}
    assert cleanup.abandoned(listing, live, before=2_000.0) == [A]
    assert cleanup.abandoned([("etl-1a2b3c4d/t/1/o", old), ("cache/x.json", old)], set(), 2_000.0,
                             cleanup.RUN_ID) == ["etl-1a2b3c4d"]


@pytest.mark.parametrize("text, delta", [("30d", datetime.timedelta(days=30)), ("12h", datetime.timedelta(hours=12)),
                                         (" 90m ", datetime.timedelta(minutes=90))])
def test_ages_are_read_with_their_unit(text, delta):
    assert cleanup.older_than(text) == delta


@pytest.mark.parametrize("text", ["30", "d", "1w", "-3d", "3.5d"])
def test_an_age_without_a_unit_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match="give a number and a unit.*30d"):
        cleanup.older_than(text)

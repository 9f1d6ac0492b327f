from ferry_ui import lineage


def workflow(name: str, tasks: list[dict], states: dict, inputs: list[dict] | None = None) -> dict:
    return {"metadata": {"namespace": "ns", "name": name},
            "spec": {"inputs": inputs or [], "tasks": tasks}, "status": {"tasks": states}}


PRODUCER = workflow("first", [
    {"name": "make", "outputs": [{"name": "data", "kind": "directory"}]},
    {"name": "use", "inputs": [{"name": "data", "fromTask": {"task": "make", "output": "data"}}]}],
    {"make": {"outputs": {"data": {"kind": "directory", "uri": "s3://b/data"}}}})
READER = workflow("second", [{"name": "again", "inputs": [{"name": "old", "fromInput": "old"}]},
                             {"name": "direct", "inputs": [{"name": "d", "uri": "s3://b/data"}]}],
                  {}, inputs=[{"name": "old", "uri": "s3://b/data", "kind": "directory"}])


def test_one_lookup_finds_who_made_a_uri_and_who_read_it_in_any_workflow():
    index = lineage.Index()
    index.put(PRODUCER)
    index.put(READER)
    assert index.producers["s3://b/data"] == lineage.Use("ns", "first", "make", "data")
    assert index.readers["s3://b/data"] == {lineage.Use("ns", "first", "use", "data"),
                                            lineage.Use("ns", "second", "again", "old"),
                                            lineage.Use("ns", "second", "direct", "d")}


def test_a_changed_or_deleted_workflow_takes_its_entries_with_it():
    index = lineage.Index()
    index.put(PRODUCER)
    index.put(READER)
    index.put(workflow("second", [{"name": "again"}], {}))
    assert index.readers["s3://b/data"] == {lineage.Use("ns", "first", "use", "data")}
    index.remove(("ns", "first"))
    assert index.producers == {} and index.readers == {}

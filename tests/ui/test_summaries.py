from ferry_ui import summaries


def line(namespace: str, name: str, phase: str, created: str) -> summaries.Summary:
    return summaries.summarize({"metadata": {"namespace": namespace, "name": name, "creationTimestamp": created},
                                "status": {"phase": phase, "progress": "1/2", "startedAt": created}})


LINES = [line("a", f"etl-{i:05d}", "Failed" if i % 10 == 0 else "Succeeded", f"2026-12-01T{i // 3600 % 24:02d}:"
              f"{i // 60 % 60:02d}:{i % 60:02d}Z") for i in range(10_000)] + [line("b", "other", "Running",
                                                                                "2026-12-02T00:00:00Z")]


def test_a_page_is_filtered_and_cut_on_the_server_newest_first():
    rows, total = summaries.select(LINES, summaries.Query())
    assert total == 10_001 and len(rows) == summaries.PAGE_SIZE and rows[0].name == "other"
    rows, total = summaries.select(LINES, summaries.Query(namespace="a", phase="Failed", name="ETL-099", offset=2,
                                                          limit=3))
    assert total == 10 and [r.name for r in rows] == ["etl-09970", "etl-09960", "etl-09950"]


def test_a_summary_keeps_only_what_the_list_shows():
    found = summaries.summarize({"metadata": {"namespace": "n", "name": "w", "creationTimestamp": "t"},
                                 "status": {"phase": "Running", "tasks": {f"t{i}": {} for i in range(100)},
                                            "startedAt": "2026-12-01T00:00:00Z", "finishedAt": "2026-12-01T00:01:05Z"}})
    assert found.duration == "1m05s" and not hasattr(found, "__dict__")
    assert summaries.summarize({"metadata": {"name": "new"}}).phase == "Pending"

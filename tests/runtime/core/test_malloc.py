"""glibc's mmap threshold is fixed once, so file-sized buffers freed by transfer threads go back."""

from __future__ import annotations

import os

import pytest

from ferry.core import malloc


@pytest.mark.skipif(not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only")
def test_the_threshold_is_set_once_on_glibc(monkeypatch):
    malloc.return_large_buffers.cache_clear()
    assert malloc.return_large_buffers() is True
    monkeypatch.setattr(os, "confstr", lambda name: pytest.fail("asked again"))
    assert malloc.return_large_buffers() is True


def test_another_c_library_is_left_alone(monkeypatch):
    malloc.return_large_buffers.cache_clear()
    monkeypatch.setattr(os, "confstr", lambda name: None)
    try:
        assert malloc.return_large_buffers() is False
    finally:
        malloc.return_large_buffers.cache_clear()


def test_only_ferrys_own_transfer_processes_change_how_memory_is_given_back(monkeypatch):
    """The setting is the whole process's: never in a process running user code."""
    from ferry import cli
    from ferry.execution import localpod
    from ferry.pod import credentials, podruntime, runner

    calls: list[str] = []
    monkeypatch.setattr(malloc, "return_large_buffers", lambda: calls.append("set"))
    for step, module, name in [("fetch", podruntime, "run_fetch"), ("publish", podruntime, "run_publish"),
                               ("run-container", localpod, "run_container"),
                               ("run-function", runner, "run_function"), ("credentials", credentials, "run_sidecar")]:
        monkeypatch.setattr(module, name, lambda: 0)
        calls.clear()
        assert cli.main(["pod", step]) == 0
        assert calls == (["set"] if step in ("fetch", "publish", "run-container") else []), step

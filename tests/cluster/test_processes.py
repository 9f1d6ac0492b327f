"""The helpers that run the suite's processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.cluster.fixtures import REPO


def test_sigterm_lets_the_cleanup_run(tmp_path):
    """A benchmark or pytest stopped by ``timeout`` or ``kill`` left etcd, the API server, the node
    and MinIO running: Python's default for SIGTERM skips every ``finally``."""
    cleaned = tmp_path / "cleaned"
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from tests.cluster.processes import interrupt_on_sigterm
        interrupt_on_sigterm()
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            open({str(cleaned)!r}, "w").close()
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert cleaned.exists(), stderr
    assert "KeyboardInterrupt: signal 15" in stderr

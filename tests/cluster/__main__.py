"""Start the test cluster and S3 server by hand, for exploring: ``python -m tests.cluster [DIR]``.

Prints the KUBECONFIG and AWS variables to use, and runs until interrupted.
"""

import pathlib
import signal
import sys
import tempfile

from tests.cluster import controlplane, fixtures, s3 as s3_server


def main() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # so sigwait gets them
    workdir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ferry-cluster-"))
    plane = controlplane.start(workdir)
    try:
        plane.servers.append(fixtures._start_node(plane, workdir / "node"))
        s3 = s3_server.start(workdir / "s3")
        plane.servers.append(s3.server)
        print(f"export KUBECONFIG={plane.kubeconfig}")
        for key, value in {**s3.env(), "FERRY_TEST_BUCKET": s3.bucket}.items():
            print(f"export {key}={value}")
        print(f"# logs: {workdir / 'logs'}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        plane.stop()


if __name__ == "__main__":
    main()

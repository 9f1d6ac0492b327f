"""Start the test cluster and S3 server by hand, for exploring: ``python -m tests.cluster [DIR]``.

Prints the KUBECONFIG and AWS variables to use, and runs until interrupted. With
``FERRY_TEST_NODE=real`` the node is the real one, in the suite's network namespace: run your
commands there with ``nsenter --net=/run/netns/ferry-test``.
"""

import pathlib
import signal
import sys
import tempfile

from tests.cluster import binaries, controlplane, fixtures, netns, realnode, s3 as s3_server


def main() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # so sigwait gets them
    workdir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ferry-cluster-"))
    real = fixtures.real_node()
    cleanup = None
    if real:
        binaries.build_node()
        binaries.build_coredns()
        binaries.build_minio()
        fixtures.node_archives()
        cleanup = realnode.enter()
    plane = controlplane.start(workdir, netns.host_address())
    try:
        if real:
            plane.servers += fixtures._start_real_node(plane)
        else:
            plane.servers.append(fixtures._start_node(plane, workdir / "node"))
        s3 = s3_server.start(workdir / "s3")
        plane.servers.append(s3.server)
        if real:
            print(f"# in the node's network namespace: nsenter --net=/run/netns/{netns.NAME} bash")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        for key, value in {**s3.env(), "FERRY_TEST_BUCKET": s3.bucket}.items():
            print(f"export {key}={value}")
        print(f"# logs: {workdir / 'logs'}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        plane.stop()
        if cleanup:
            cleanup()


if __name__ == "__main__":
    main()

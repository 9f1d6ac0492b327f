"""Every version the test cluster uses, pinned in one place.

The binaries are built from their Go modules with the installed Go and cached outside the
repository, keyed by these versions (see ``binaries.py``). Changing a version here is the only
step needed to move the test cluster to another release.
"""

KUBERNETES = "v1.34.4"
"""kube-apiserver, kube-controller-manager and kubectl, from ``k8s.io/kubernetes``.

etcd is built from ``go.etcd.io/etcd/server/v3`` at the version this Kubernetes release
requires in its own go.mod (v3.6.4 for v1.34), so the two always match."""

MINIO = "v0.0.0-20260212201848-7aac2a2c5b7c"
"""The S3-compatible server, ``github.com/minio/minio`` (MinIO tags releases as
``RELEASE.<date>``, which the Go module proxy serves as pseudo-versions)."""

HELM = "v3.19.5"
"""``helm.sh/helm/v3``, for chart tests."""

COREDNS = "v1.12.4"
"""``github.com/coredns/coredns``: the real node's cluster DNS (Services by name, as on kind)."""

KWOK = "v0.8.0"
"""``sigs.k8s.io/kwok``: plays the kubelet for thousands of pods in ``benchmarks/orchestration.py``,
as controller authors measure at scale (it needs no Docker when run as a plain process)."""

DEBIAN = "bookworm"
"""The Debian release the real node's Python base image is made from (``node_images.py``): its
python3 is 3.11, the Python of the Dockerfile's ``python:3.11-slim-bookworm``."""

PYTHON_BASE_REVISION = 1
"""Bump to rebuild that base image from the mirror's current packages (security updates); it is
otherwise rebuilt only when its package list or recipe changes."""

# One image for the operator, the in-pod runtime and the web UI, two entrypoints:
#   ferry           (the default) fetches inputs and publishes outputs in task pods; `ferry ui`
#                   serves the UI (the chart's optional UI Deployment);
#   ferry-operator  runs the operator (the Helm chart sets `command: [ferry-operator]`).
#
# The build stage turns the project and its dependencies into wheels and installs them into a
# virtual environment; the final stage copies only that environment onto the same pinned base,
# so it has no compiler, no pip and no sources. tests/cluster/node_images.py builds it with buildah,
# unchanged, and tests/helm/test_image.py runs both entrypoints from it on the suite's real node.
#
# Build: docker build -t ferry:dev .
# Pin the base by digest in CI: --build-arg PYTHON_IMAGE=python:3.11.12-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG WHEELS=/wheels
ARG VENV=/opt/ferry
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY operator operator
COPY ui ui
RUN pip wheel --wheel-dir "$WHEELS" '.[operator,ui]'
# Bytecode checked by the hash of its source, not its time: layers may move file times (by a second
# in buildah's), and a pyc whose recorded time differs is compiled again at every start, unwritten
# (read-only root filesystem): 279 modules, 20 ms of each task pod's start, before this.
RUN python -m venv --without-pip "$VENV" \
    && python -m pip --python "$VENV/bin/python" install --no-index --no-compile --find-links "$WHEELS" \
       'ferry-workflows[operator,ui]' \
    && "$VENV/bin/python" -m compileall -q -j 0 --invalidation-mode checked-hash "$VENV/lib"

FROM ${PYTHON_IMAGE}
# The distribution the image holds (PyPI's "ferry" is an unrelated project).
LABEL org.opencontainers.image.title="ferry-workflows" \
      org.opencontainers.image.description="Ferry: a Kubernetes-native workflow engine (operator, task runtime, ferry ui)"
# No packaging tools in the final image: the environment is complete and never changes.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && groupadd --gid 10001 ferry \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin ferry
COPY --from=build /opt/ferry /opt/ferry
# HOME and caches in /tmp: with a read-only root filesystem, /tmp is the pod's emptyDir.
ENV PATH=/opt/ferry/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["ferry"]

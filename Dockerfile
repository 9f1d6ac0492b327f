# One image for the operator and the in-pod runtime: `ferry` (the default entrypoint) runs task
# I/O in pods; `ferry-operator` runs the operator. Built from the project's wheel; no build tools
# in the final stage.
FROM python:3.11.10-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY runtime runtime
COPY operator operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[operator]'

FROM python:3.11.10-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'ferry[operator]' && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin ferry
USER 10001
ENTRYPOINT ["ferry"]

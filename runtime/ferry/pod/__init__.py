"""The runtime inside a task pod: fetch, publish, the function runner, the credentials sidecar and the
cleanup pod (``ferry pod ...``)."""

"""The credentials file of a task pod: where it is and how to read it.

The pod's ``ferry-credentials`` sidecar (``ferry.pod.credentials``) writes short-lived store
credentials there and renews them; the S3 backends of every other container read them
(``FERRY_S3_CREDENTIALS_FILE``), and the operator mounts the folder. Reading needs no client library.
"""

from __future__ import annotations

import json
import os
import pathlib

CREDENTIALS_DIR = "/ferry/credentials"
"""On the pod's shared volume (``ferry.api.taskpod.ROOT``), an in-memory one of its own."""
CREDENTIALS_FILE = f"{CREDENTIALS_DIR}/s3.json"


def read(path: str | os.PathLike) -> dict[str, str]:
    """The file's credentials, in the form botocore's refreshable credentials take."""
    issued = json.loads(pathlib.Path(path).read_text())
    return {"access_key": issued["AccessKeyId"], "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"], "expiry_time": issued["Expiration"]}

"""A real S3-compatible server: MinIO, built from its Go module and cached, on loopback or, with the
real node, on the node's address."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator

import boto3
from botocore.config import Config

from tests.cluster import binaries, netns
from tests.cluster.processes import Server, free_port


@dataclasses.dataclass
class S3:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    server: Server | None = None

    def env(self) -> dict[str, str]:
        """The usual AWS variables, which boto3 and the AWS CLI read (``AWS_ENDPOINT_URL`` included)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self):
        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(s3={"addressing_style": "path"}),
        )

    def stop(self) -> None:
        if self.server:
            self.server.stop()

    def ready(self) -> bool:
        return urllib.request.urlopen(f"{self.endpoint_url}/minio/health/ready", timeout=2).status == 200

    @contextlib.contextmanager
    def outage(self, seconds: float) -> Iterator[None]:
        """The server is down when the block starts and comes back ``seconds`` later, by itself."""
        self.server.stop()

        def come_back() -> None:
            time.sleep(seconds)
            self.server.restart()
            self.server.wait_until(self.ready, 60, "ready again")

        back = threading.Thread(target=come_back, daemon=True)
        back.start()
        try:
            yield
        finally:
            back.join()


def start(workdir: pathlib.Path) -> S3:
    """Start MinIO with fresh credentials and create one bucket for this test session."""
    minio = binaries.build_minio()
    workdir.mkdir(parents=True, exist_ok=True)
    port, console = free_port(), free_port()
    access_key, secret_key = "ferry-" + secrets.token_hex(4), secrets.token_hex(16)
    env = {
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "HOME": str(workdir),
        "PATH": "/usr/bin:/bin",
    }
    host = netns.host_address()  # where pods reach it too, on the real node
    server = Server("minio", [str(minio), "server", str(workdir / "data"), "--quiet",
                              "--address", f"{host}:{port}", "--console-address", f"127.0.0.1:{console}"],
                    workdir, env=env)
    endpoint = f"http://{host}:{port}"
    try:
        s3 = S3(endpoint, access_key, secret_key, f"ferry-test-{secrets.token_hex(4)}", server=server)
        server.wait_until(s3.ready, 60, "ready")
        s3.client().create_bucket(Bucket=s3.bucket)
        return s3
    except BaseException:
        server.stop()
        raise

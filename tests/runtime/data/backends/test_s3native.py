"""Where the native client sends requests, and with which keys: resolved without boto3 when the
configuration says it plainly, and exactly as boto3 would otherwise."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import botocore.credentials
import pytest

import ferry
from ferry.data.backends import s3native

KEYS = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}


@pytest.fixture
def no_aws_config(tmp_path) -> dict[str, str]:
    return {"AWS_CONFIG_FILE": str(tmp_path / "absent")}


def test_an_endpoint_and_keys_in_the_environment_need_no_boto3(no_aws_config):
    target = s3native.plain_target(ferry.Settings(), {**no_aws_config, **KEYS, "AWS_ENDPOINT_URL": "http://minio:9000/",
                                                      "AWS_REGION": "eu-west-3"})
    assert (target.endpoint, target.virtual, target.region) == ("http://minio:9000", False, "eu-west-3")
    assert target.credentials() == {"access_key_id": "AK", "secret_access_key": "SK", "token": None, "expires_at": None}


def test_settings_come_before_the_environment(no_aws_config):
    settings = ferry.Settings(s3_endpoint_url="https://s3.example.com", s3_access_key_id="mine",
                              s3_secret_access_key="secret", s3_session_token="token")
    target = s3native.plain_target(settings, {**no_aws_config, **KEYS, "AWS_ENDPOINT_URL": "http://other"})
    assert target.endpoint == "https://s3.example.com" and target.region == "us-east-1"
    assert target.credentials()["access_key_id"] == "mine" and target.credentials()["token"] == "token"


def test_the_scoped_credentials_file_is_read_again_as_it_changes(no_aws_config, tmp_path):
    issued = tmp_path / "s3.json"

    def issue(key: str) -> None:
        issued.write_text(json.dumps({"AccessKeyId": key, "SecretAccessKey": "s", "SessionToken": "t",
                                      "Expiration": "2099-01-01T00:00:00+00:00"}))

    issue("first")
    target = s3native.plain_target(ferry.Settings(s3_credentials_file=issued, s3_endpoint_url="http://minio"),
                                   {**no_aws_config, **KEYS})
    assert target.credentials()["access_key_id"] == "first" and target.credentials()["expires_at"] is not None
    issue("renewed")
    assert target.credentials()["access_key_id"] == "renewed"


@pytest.mark.parametrize("environ, settings", [
    ({**KEYS}, {}),  # no endpoint: AWS's own, which boto3 resolves
    ({**KEYS, "AWS_ENDPOINT_URL": "http://minio", "AWS_PROFILE": "work"}, {}),  # a profile could say otherwise
    ({"AWS_ENDPOINT_URL": "http://minio"}, {}),  # no keys: boto3's chain (IRSA, instance roles...)
    ({**KEYS, "AWS_ENDPOINT_URL": "http://minio"}, {"s3_addressing_style": "virtual"}),
])
def test_anything_else_is_left_to_boto3(no_aws_config, environ, settings):
    assert s3native.plain_target(ferry.Settings(**settings), {**no_aws_config, **environ}) is None


def test_an_aws_config_file_is_left_to_boto3(tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\nendpoint_url = http://elsewhere\n")
    environ = {**KEYS, "AWS_ENDPOINT_URL": "http://minio", "AWS_CONFIG_FILE": str(config)}
    assert s3native.plain_target(ferry.Settings(), environ) is None


def test_a_boto3_client_hands_over_its_endpoint_style_and_credentials(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # set for the suite's own S3 server
    session = boto3.session.Session(aws_access_key_id="AK", aws_secret_access_key="SK", region_name="eu-west-1")
    aws = s3native.client_target(session.client("s3"), session.get_credentials(), "my-bucket")
    assert (aws.endpoint, aws.virtual, aws.region) == ("https://my-bucket.s3.amazonaws.com", True, "eu-west-1")
    assert aws.credentials()["expires_at"] is None
    dotted = s3native.client_target(session.client("s3"), session.get_credentials(), "my.bucket")
    assert (dotted.endpoint, dotted.virtual) == ("https://s3.eu-west-1.amazonaws.com", False)

    refreshable = botocore.credentials.RefreshableCredentials.create_from_metadata(
        {"access_key": "AK", "secret_key": "SK", "token": "T", "expiry_time": "2099-01-01T00:00:00+00:00"},
        lambda: {}, "test")
    minio = s3native.client_target(session.client("s3", endpoint_url="http://minio:9000"), refreshable, "b")
    assert (minio.endpoint, minio.virtual) == ("http://minio:9000", False)
    assert minio.credentials()["token"] == "T" and minio.credentials()["expires_at"] is not None


@pytest.mark.s3
def test_moving_data_with_a_plain_configuration_never_imports_boto3(s3, tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "a.txt").write_text("a")
    (tmp_path / "big.bin").write_bytes(b"x" * (20 * 1024 * 1024))
    code = f"""
import sys, ferry
store = ferry.Store(ferry.Settings(raw_data_prefix="s3://{s3.bucket}/plain", cache_dir={str(tmp_path / 'cache')!r},
                                   multipart_threshold=16 * 1024 * 1024))
ref = store.upload_directory({str(tmp_path / 'tree')!r})
store.upload_directory({str(tmp_path / 'tree')!r}, ref.uri)  # again: reads and deletes the old manifest
store.download_directory(ref, {str(tmp_path / 'back')!r})
print("boto3 after the small files:", "boto3" in sys.modules)
big = store.upload_file({str(tmp_path / 'big.bin')!r})  # multipart: boto3's part
store.download_file(big, {str(tmp_path / 'big-back.bin')!r})
"""
    environ = {**s3.env(), "AWS_CONFIG_FILE": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True).stdout
    assert "boto3 after the small files: False" in out
    assert (tmp_path / "back" / "sub" / "a.txt").read_text() == "a"
    assert (tmp_path / "big-back.bin").stat().st_size == 20 * 1024 * 1024

"""Settings from FERRY_* variables."""

from __future__ import annotations

import pytest

import ferry


def test_defaults_put_the_embedded_store_under_the_cache(tmp_path):
    settings = ferry.Settings.from_env({"FERRY_CACHE_DIR": str(tmp_path)})
    assert settings.raw_data_prefix == (tmp_path / "raw").as_uri()
    assert settings.concurrency > 1 and settings.multipart_threshold >= 5 * 1024 * 1024


def test_xdg_cache_home_is_honoured(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ferry.Settings.from_env({}).raw_data_prefix == (tmp_path / "ferry" / "raw").as_uri()


def test_values_are_read_and_typed():
    settings = ferry.Settings.from_env({
        "FERRY_RAW_DATA_PREFIX": "s3://bucket/data", "FERRY_CONCURRENCY": "64", "FERRY_S3_ADDRESSING_STYLE": "path",
        "FERRY_S3_SECRET_ACCESS_KEY": "hush", "UNRELATED": "x"})
    assert (settings.raw_data_prefix, settings.concurrency, settings.s3_addressing_style) == ("s3://bucket/data", 64, "path")
    assert "hush" not in repr(settings)


def test_bad_values_name_the_variable():
    with pytest.raises(ValueError, match="FERRY_CONCURRENCY: Input should be greater than or equal to 1"):
        ferry.Settings.from_env({"FERRY_CONCURRENCY": "0"})
    with pytest.raises(ValueError, match="FERRY_S3_ADDRESSING_STYLE"):
        ferry.Settings.from_env({"FERRY_S3_ADDRESSING_STYLE": "sideways"})


def test_plain_path_prefix_becomes_a_file_uri(tmp_path):
    settings = ferry.Settings.from_env({"FERRY_RAW_DATA_PREFIX": str(tmp_path / "raw") + "/"})
    assert settings.raw_data_prefix == (tmp_path / "raw").as_uri()
    assert ferry.Store(settings).random_remote_path().startswith((tmp_path / "raw").as_uri() + "/")

"""Records (``Settings``, ``BlobRef``): what they check themselves, they take exactly as their
pydantic models do; everything else goes to the models, so errors read as they always did."""

from __future__ import annotations

import json
import math
import os
import pathlib
import pickle
import subprocess
import sys

import pydantic
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import ferry
from ferry.core import records
from ferry.data import blobs, settings as settings_

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HEX = "0123456789abcdef"

# Values as callers and hostile input give them: right, nearly right, and wrong in type or range.
SAMPLES = [
    None, True, False, 0, 1, -1, 5 * 1024 * 1024, 5 * 1024 * 1024 - 1, 1024, 1025, 256, 257, 50, 51, 2 ** 63,
    2 ** 63 - 1, 2 ** 70, 0.0, -0.0, 1.5, 10.0, -1.0, math.inf, math.nan, "", "0", "1", "-1", "064", "+1", " 1",
    "1.5", "1.", "1e3", "0.0", "true", "True", "false", "yes", "no", "on", "t", "path", "auto", "virtual",
    "sideways", "s3://b/k", "file:///x", "/plain/path", "relative/", "nul\0", "é://x", "a\ud800://b", "a" * 64,
    "A" * 64, "a" * 63, "a" * 64 + "\n", "sha256:" + "a" * 64, "sha256:" + "a" * 64 + "\n", "sha256:" + "g" * 64,
    *blobs.Kind, "file", "directory", "asset", "table", "FILE", pathlib.Path("/tmp/x"), pathlib.PurePosixPath("/x"),
    [1], {}, b"s3://b/k",
]
VALUE = st.one_of(
    st.sampled_from(SAMPLES), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
    st.text(alphabet=HEX, min_size=63, max_size=65), st.text(alphabet=HEX, min_size=64, max_size=64),
    st.text(alphabet=HEX, min_size=64, max_size=64).map(lambda digits: "sha256:" + digits),
)


VALID = {blobs.BlobRef: {"uri": "s3://b/k", "kind": "file"}, settings_.Settings: {}}


def fields_of(cls: type[records.Record], extra: tuple[str, ...] = ("extra",)):
    """Any fields, or valid ones but one (so that the record's own checks decide)."""
    names = st.sampled_from([*cls.FIELDS, *extra])
    one = st.dictionaries(names, VALUE, min_size=1, max_size=1).map(lambda field: {**VALID[cls], **field})
    return st.one_of(one, st.dictionaries(names, VALUE, max_size=len(cls.FIELDS) + 1))


def outcome(make, *args):
    """What ``make`` makes of the input: every field with its type, or the validation error's text."""
    try:
        made = make(*args)
    except pydantic.ValidationError as error:
        return "error", str(error)
    return {name: (type(getattr(made, name)), repr(getattr(made, name))) for name in type(made).FIELDS} \
        if isinstance(made, records.Record) else \
        {name: (type(getattr(made, name)), repr(getattr(made, name))) for name in type(made).model_fields}


@pytest.mark.parametrize("cls", [blobs.BlobRef, settings_.Settings])
@SETTINGS
@given(data=st.data())
def test_a_record_takes_and_refuses_what_its_model_does(cls, data, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the default cache_dir, the same on both sides
    values = data.draw(fields_of(cls))
    assert outcome(lambda: cls(**values)) == outcome(lambda: cls._model()(**values))
    assert outcome(cls.model_validate, values) == outcome(cls._model().model_validate, values)


@pytest.mark.parametrize("cls", [blobs.BlobRef, settings_.Settings])
def test_every_field_takes_and_refuses_each_sample_as_the_model_does(cls, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for name in [*cls.FIELDS, "extra"]:
        for value in SAMPLES:
            values = {**VALID[cls], name: value}
            assert outcome(lambda: cls(**values)) == outcome(lambda: cls._model()(**values)), values


@SETTINGS
@given(fields_of(blobs.BlobRef), st.booleans(), st.sampled_from(["", " ", "\n"]))
def test_a_blob_reference_reads_json_as_its_model_does(values, ascii_only, space):
    try:
        text = json.dumps(values, ensure_ascii=ascii_only, default=str).replace(", ", "," + space)
    except ValueError:
        return
    for data in (text, text.encode("utf-8", "surrogatepass")):
        assert outcome(blobs.BlobRef.model_validate_json, data) == outcome(blobs.BlobRef._model().model_validate_json,
                                                                           data)


GOOD_JSON = '{"uri": "s3://b/k", "kind": "file", "size": 1}'


@pytest.mark.parametrize("data", [
    GOOD_JSON, GOOD_JSON.encode(), "\ufeff" + GOOD_JSON, b"\xef\xbb\xbf" + GOOD_JSON.encode(), GOOD_JSON + " x",
    '{"uri": "s3://b/k", "kind": "file", "uri": "s3://b/other"}', '{"uri": "s3://b/k", "kind": "file", "size": NaN}',
    '{"uri": "s3://b/k", "kind": "file", "size": 1.0}', '{"uri": "s3://b/\\ud800", "kind": "file"}',
    '{"uri": "s3://b/\\u00e9", "kind": "file"}', '{"uri": "s3://b/k", "kind": "file", "size": 99999999999999999999}',
    '[]', '', 'null', b"\xff", '{"uri": "s3://b/k", "kind": "file", "size": "1"}', '{"uri": "s3://b/k"}',
])
def test_a_blob_reference_reads_odd_json_as_its_model_does(data):
    assert outcome(blobs.BlobRef.model_validate_json, data) == outcome(blobs.BlobRef._model().model_validate_json, data)


@SETTINGS
@given(st.dictionaries(st.sampled_from([*settings_.Settings.FIELDS, "unknown"]),
                       st.one_of(st.text(max_size=8), st.sampled_from(["64", "0", "1025", "true", "0", "120.5", "path",
                                                                         "s3://b/p", "/srv/x/", "[1]", "{}"])),
                       max_size=4))
def test_settings_from_the_environment_are_read_as_the_model_reads_them(variables):
    environ = {settings_.ENV_PREFIX + name.upper(): value for name, value in variables.items()}

    def read(cls):
        try:
            return settings_.from_environ(cls, settings_.ENV_PREFIX, environ, "Ferry settings").model_dump(mode="json")
        except ValueError as error:
            return str(error)
    assert read(settings_.Settings) == read(settings_.Settings._model())


@SETTINGS
@given(fields_of(blobs.BlobRef, extra=()))
def test_a_blob_reference_writes_json_and_dicts_as_its_model_does(values):
    try:
        ref = blobs.BlobRef(**values)
    except pydantic.ValidationError:
        return
    model = blobs.BlobRef._model()(**values)
    try:
        expected = model.model_dump_json(exclude_none=True)
    except pydantic_core.PydanticSerializationError:  # text pydantic cannot write (a lone surrogate)
        with pytest.raises(pydantic_core.PydanticSerializationError):
            ref.to_json()
        return
    assert ref.to_json() == expected
    assert blobs.BlobRef.model_validate_json(ref.to_json()) == ref
    for options in ({}, {"exclude_none": True}, {"mode": "json"}, {"mode": "json", "exclude_none": True}):
        assert ref.model_dump(**options) == model.model_dump(**options)


def test_plain_input_needs_no_pydantic():
    code = ("import sys, ferry\n"
            "s = ferry.Settings(raw_data_prefix='s3://b/p', s3_addressing_style='path')\n"
            "e = ferry.Settings.from_env({'FERRY_CONCURRENCY': '64', 'FERRY_HASH_CACHE': 'false', 'FERRY_CACHE_DIR': '/c'})\n"
            "r = ferry.BlobRef.model_validate_json('{\"uri\":\"s3://b/k\",\"kind\":\"file\",\"size\":1,\"sha256\":\"%s\"}')\n"
            "r.to_json(), r.model_dump(mode='json'), ferry.BlobRef.model_validate(r.model_dump())\n"
            "print('pydantic' in sys.modules, e.concurrency, e.hash_cache)" % ("a" * 64))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "64", "False"]


def test_errors_name_the_field_as_the_model_did():
    with pytest.raises(pydantic.ValidationError, match=r"1 validation error for Settings\nconcurrency\n"
                                                       r"  Input should be greater than or equal to 1"):
        ferry.Settings(concurrency=0)
    with pytest.raises(pydantic.ValidationError, match=r"validation error for BlobRef\nuri\n  Value error, "
                                                       r"'/local' is not a URI"):
        ferry.BlobRef(uri="/local", kind="file")
    with pytest.raises(pydantic.ValidationError, match=r"extra\n  Extra inputs are not permitted"):
        ferry.BlobRef.model_validate_json('{"uri": "s3://b/k", "kind": "file", "extra": 1}')


def test_records_are_frozen_values():
    ref = ferry.BlobRef(uri="s3://b/k", kind=ferry.Kind.FILE, size=1)
    same = ferry.BlobRef.model_validate({"uri": "s3://b/k", "kind": "file", "size": "1"})  # through the model
    assert ref == same and hash(ref) == hash(same) and ref != ref.model_copy(update={"size": 2})
    assert pickle.loads(pickle.dumps(ref)) == ref and ferry.BlobRef.model_validate(ref) is ref
    assert repr(ref) == repr(blobs.BlobRef._model()(**ref.model_dump()))
    with pytest.raises(AttributeError, match="frozen"):
        ref.size = 3
    with pytest.raises(ValueError, match="no field 'bogus'"):
        ref.model_copy(update={"bogus": 1})
    secret = ferry.Settings(s3_access_key_id="id", s3_secret_access_key="hush")
    assert secret.s3_secret_access_key.get_secret_value() == "hush" and "hush" not in repr(secret)
    assert pickle.loads(pickle.dumps(secret)) == secret


def test_the_version_is_read_as_importlib_metadata_reads_it_without_importing_it(tmp_path):
    """A checkout installed with ``pip install -e .`` holds a ``ferry_workflows.egg-info``, first on
    ``sys.path`` when Python runs there (the benchmarks do): it is read too, not left to
    importlib.metadata. The unrelated ``ferry`` distribution beside it is not Ferry's."""
    built = tmp_path / "built"
    (built / "ferry_workflows.egg-info").mkdir(parents=True)
    (built / "ferry_workflows.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: ferry-workflows\nVersion: 9.8.7rc1\n\nVersion: 0\n")  # the body may say anything
    (built / "ferry-0.3.3.4.dist-info").mkdir()
    (built / "ferry-0.3.3.4.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ferry\nVersion: 0.3.3.4\n")
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(ferry.__file__).parents[1])}
    for cwd in (tmp_path, pathlib.Path(__file__).parents[3], built):
        reference = f"from importlib import metadata; print(metadata.version({ferry.DISTRIBUTION!r}))"
        expected = subprocess.run([sys.executable, "-c", reference], capture_output=True, text=True, cwd=cwd,
                                  env=env).stdout.strip() or "0.0.0"
        code = "import sys, ferry; print(ferry.__version__, 'importlib.metadata' in sys.modules)"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, env=env)
        assert run.stdout.split() == [expected, "False"], cwd
    assert expected == "9.8.7rc1"


def _stripped(name: str) -> str:
    if not name.strip():
        raise ValueError("name is empty")
    return name.strip()


class Sample(records.Record):
    """A record declared once: the generated model takes its types, defaults, constraints, validators."""

    count: int = records.field(records.integer(1, 3), 2)
    """How many, at most 3."""
    digest: str | None = records.field(records.optional(records.matching(r"^[ab]{2}$")), None)
    folder: pathlib.Path = records.field(records.path, records.Factory(lambda: pathlib.Path("/default")))
    name: str = records.field(records.constrained(
        lambda name: name if type(name) is str and name and name.strip() == name else records.NO, after=_stripped))

    @classmethod
    def _validate(cls, fields):
        if fields["count"] == 3 and fields["digest"] is None:
            raise ValueError("a count of 3 needs a digest")
        return {**fields, "name": fields["name"].lower()}


def test_a_record_s_model_is_generated_from_its_one_declaration():
    model = Sample._model()
    assert model.__name__ == "Sample" and list(model.model_fields) == list(Sample.FIELDS)
    made = model(name=" Ab ")
    assert (made.count, made.digest, made.folder, made.name) == (2, None, pathlib.Path("/default"), "ab")
    assert Sample(name=" Ab ") == Sample(name="Ab") and Sample(name="Ab").model_dump() == made.model_dump()
    for wrong, says in [({"count": 4}, "less than or equal to 3"), ({"count": 0}, "greater than or equal to 1"),
                        ({"digest": "abc"}, "should match pattern"), ({"name": " "}, "name is empty"),
                        ({"count": 3}, "a count of 3 needs a digest"), ({"other": 1}, "Extra inputs")]:
        with pytest.raises(pydantic.ValidationError, match=says):
            Sample(**{"name": "x", **wrong})
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        made.count = 1


def test_a_model_that_holds_a_record_s_values_among_others_takes_its_fields_partially():
    """As a status's ``Output`` takes a blob reference's: each may be absent; the schema's constraints
    and the docstrings (as descriptions) stay, the checks only Python makes (``after``) do not."""
    model = pydantic.create_model("Holder", **records.fields(Sample, partial=True), extra=(int, 0))
    assert model().model_dump() == {"count": None, "digest": None, "folder": None, "name": None, "extra": 0}
    assert model(name=" ").name == " "
    for wrong, says in [({"count": 4}, "less than or equal to 3"), ({"digest": "abc"}, "should match pattern")]:
        with pytest.raises(pydantic.ValidationError, match=says):
            model(**wrong)
    properties = model.model_json_schema()["properties"]
    assert properties["count"]["description"] == records.docstrings(Sample)["count"] == "How many, at most 3."
    assert "description" not in properties["digest"] and records.docstrings(Sample).keys() == {"count"}


@pytest.mark.parametrize("cls", [blobs.BlobRef, settings_.Settings, Sample])
def test_every_field_has_one_annotation_and_one_check_in_the_same_order(cls):
    assert [name for name in cls.__annotations__ if name != "FIELDS"] == list(cls.FIELDS)

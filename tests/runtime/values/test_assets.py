"""ferry.asset / ferry.Asset, with every example of the Coflux seed, against the local store and S3."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import subprocess
import sys

import pytest

import ferry
from ferry.api import resource
from ferry.core import uris
from ferry.data import manifest
from ferry.values import assets, typed as values
from tests.runtime.helpers import Spy
from tests.runtime.values.test_files import other_pod


class Counting(Spy):
    """A Spy that also records reads and small writes (manifests)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.reads: list[str] = []
        self.writes: list[str] = []

    def open(self, uri):
        self.reads.append(uri)
        return super().open(uri)

    def download(self, uri, sink):
        self.reads.append(uri)
        return super().download(uri, sink)

    def write_bytes(self, uri, data):
        self.writes.append(uri)
        return super().write_bytes(uri, data)


def count_io(store: ferry.Store) -> Counting:
    spy = Counting(store.backend(store.raw_data_prefix))
    store._backends[uris.scheme(store.raw_data_prefix)] = spy
    return spy


def workdir(tmp_path: pathlib.Path, monkeypatch, name: str, files: dict[str, str] | None = None) -> pathlib.Path:
    """A fresh working directory for a task, made current, with ``files`` in it."""
    root = tmp_path / name
    root.mkdir()
    for path, text in (files or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    monkeypatch.chdir(root)
    return root


def next_task(value, store, tmp_path, monkeypatch, name="task2"):
    """What the engine does between tasks: the value travels as JSON, the next task has its own
    disk and working directory."""
    text = json.dumps({"outputs": {"asset": json.loads(ferry.to_blob(value).to_json())}})
    pod = other_pod(store, tmp_path, name)
    workdir(tmp_path, monkeypatch, f"{name}-work")
    return ferry.from_blob(json.loads(text)["outputs"]["asset"]), pod


@ferry.task
def publish_site() -> ferry.Asset:
    pathlib.Path("img").mkdir()
    pathlib.Path("img/a.png").write_text("png")
    pathlib.Path("index.html").write_text("<h1>hi</h1>")
    return ferry.asset()


@ferry.task
def only_images(site: ferry.Asset) -> ferry.Asset:
    return ferry.asset(site, match="**/*.{png,jpg}")


@ferry.task
def read_back(site: ferry.Asset) -> dict[str, str]:
    return {path: local.read_text() for path, local in site.restore().items()}


@ferry.workflow
def site_images() -> dict[str, str]:
    return read_back(site=only_images(site=publish_site()))


def test_assets_travel_between_tasks_of_a_workflow(tmp_path):
    with ferry.use_store(ferry.Store(ferry.Settings(raw_data_prefix=(tmp_path / "raw").as_uri(),
                                                    cache_dir=tmp_path / "cache"))):
        assert site_images() == {"img/a.png": "png"}


def test_seed_default_collects_the_working_directory(store, tmp_path, monkeypatch):
    root = workdir(tmp_path, monkeypatch, "task1", {"sub/bar.txt": "bar"})
    # the seed's my_task
    pathlib.Path.cwd().joinpath("foo.txt").write_text("hello")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    published = ferry.asset()
    (root / "foo.txt").write_text("changed later")  # an asset is published when it is made

    ref = ferry.to_blob(published)
    assert ref.kind == ferry.Kind.ASSET and ref.file_count == 3 and ref.uri.startswith(store.raw_data_prefix)
    assert store.list(ref.uri) == ["foo.txt", "run.sh", "sub/bar.txt"]  # browsable, like a Directory

    received, pod2 = next_task(published, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        assert isinstance(received, ferry.Asset) and received == published
        paths = received.restore()  # the seed's my_workflow
        assert paths["foo.txt"].read_text() == "hello"
    assert paths == {p: pathlib.Path.cwd() / p for p in ["foo.txt", "run.sh", "sub/bar.txt"]}
    assert paths["run.sh"].stat().st_mode & 0o777 == 0o755


def test_seed_single_path_list_and_base_directory(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"my_file.txt": "mine", "first.txt": "1", "second.txt": "2",
                                             "images/a.jpg": "a", "images/b/c.png": "c"})
    assert list(ferry.asset("my_file.txt")) == ["my_file.txt"]
    assert list(ferry.asset(pathlib.Path("my_file.txt"))) == ["my_file.txt"]
    assert list(ferry.asset(["first.txt", "second.txt"])) == ["first.txt", "second.txt"]
    assert list(ferry.asset("images")) == ["images/a.jpg", "images/b/c.png"]
    at_images = ferry.asset(at=pathlib.Path("images"))
    assert list(at_images) == list(ferry.asset(at="images")) == ["a.jpg", "b/c.png"]

    received, pod2 = next_task(at_images, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        assert received.restore()["b/c.png"].read_text() == "c"


def test_seed_match_with_globstar_and_braces(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"x.jpg": "", "d/y.png": "", "d/e/z.jpg": "", "n.gif": "", "d/w.txt": ""})
    assert list(ferry.asset(match="**/*.{jpg,png}")) == ["d/e/z.jpg", "d/y.png", "x.jpg"]
    assert list(ferry.asset("d", match="d/*.{png,txt}")) == ["d/w.txt", "d/y.png"]


def test_seed_explicit_entries(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"image.jpg": "jpeg", "styles.css": "css", "static/i.ico": "ico"})
    published = ferry.asset({"img/1.jpg": "image.jpg", "css/default.css": "styles.css", "web": "static"})
    assert list(published) == ["css/default.css", "img/1.jpg", "web/i.ico"]
    received, pod2 = next_task(published, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        paths = received.restore()
    assert {p: path.read_text() for p, path in paths.items()} == {
        "css/default.css": "css", "img/1.jpg": "jpeg", "web/i.ico": "ico"}


def test_seed_filtering_an_asset_moves_no_data(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"a.md": "# a", "b/c.md": "# c", "d.txt": "d"})
    original = ferry.asset()
    spy = count_io(store)
    filtered = ferry.asset(original, match="*.md")  # the seed's example
    deep = ferry.asset(original, match="**/*.md")
    assert spy.uploads == []
    assert spy.reads == [uris.join(original.uri, manifest.NAME)]  # the original's manifest, once
    assert spy.writes == [uris.join(a.uri, manifest.NAME) for a in (filtered, deep)]
    assert list(filtered) == ["a.md"] and list(deep) == ["a.md", "b/c.md"]
    assert store.manifest(deep.to_blob()).find("b/c.md").object == uris.join(original.uri, "b/c.md")

    received, pod2 = next_task(deep, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        assert received.restore()["b/c.md"].read_text() == "# c"


def test_seed_combining_assets_moves_no_data(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "one", {"x.txt": "x1", "same.txt": "s1"})
    asset_1 = ferry.asset()
    workdir(tmp_path, monkeypatch, "two", {"y/z.txt": "z2", "same.txt": "s2"})
    asset_2 = ferry.asset()
    spy = count_io(store)
    combined = ferry.asset({"1": asset_1, "2": asset_2})  # the seed's example
    again = ferry.asset(combined, match="2/**")
    renamed = ferry.asset({"renamed.txt": asset_1["x.txt"]})
    picked = ferry.asset([asset_1["x.txt"], asset_2["y/z.txt"]])
    assert list(combined) == ["1/same.txt", "1/x.txt", "2/same.txt", "2/y/z.txt"]
    assert list(again) == ["2/same.txt", "2/y/z.txt"]
    assert list(renamed) == ["renamed.txt"] and list(picked) == ["x.txt", "y/z.txt"]
    assert spy.uploads == [] and all(uri.endswith(manifest.NAME) for uri in spy.reads + spy.writes)
    # a combination of a combination still points at the first objects, not at a chain of manifests
    assert store.manifest(again.to_blob()).find("2/y/z.txt").object == uris.join(asset_2.uri, "y/z.txt")

    received, pod2 = next_task(combined, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        paths = received.restore()
    assert {p: path.read_text() for p, path in paths.items()} == {
        "1/same.txt": "s1", "1/x.txt": "x1", "2/same.txt": "s2", "2/y/z.txt": "z2"}


def test_combining_assets_with_the_same_path_is_refused(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "one", {"same.txt": "1"})
    asset_1 = ferry.asset()
    workdir(tmp_path, monkeypatch, "two", {"same.txt": "2"})
    with pytest.raises(ValueError, match="two files would be 'same.txt'"):
        ferry.asset([asset_1, ferry.asset()])
    assert list(ferry.asset([asset_1, asset_1])) == ["same.txt"]  # the same file twice is one entry


def test_seed_partial_restores(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"images/a.jpg": "a", "images/b.png": "b", "images/c.gif": "c",
                                             "images/deep/d.jpg": "d", "path/to/file.txt": "text"})
    received, pod2 = next_task(ferry.asset(), store, tmp_path, monkeypatch)
    here = pathlib.Path.cwd()
    with ferry.use_store(pod2):
        restored = received.restore(match="images/*.{jpg,png}")
        assert restored == {"images/a.jpg": here / "images/a.jpg", "images/b.png": here / "images/b.png"}
        assert sorted(p.name for p in (here / "images").iterdir()) == ["a.jpg", "b.png"]

        path = received["path/to/file.txt"].restore()  # one entry
        assert path == here / "path/to/file.txt" and path.read_text() == "text"

        other = received.restore(to="other/dir")
        assert other["images/deep/d.jpg"] == here / "other/dir/images/deep/d.jpg"
        restored = here / "other/dir"
        assert sorted(p.relative_to(restored).as_posix() for p in restored.rglob("*") if p.is_file()) == list(received)
        assert received["images/a.jpg"].restore(to=tmp_path / "abs").read_text() == "a"
        with pytest.raises(KeyError, match="not in the asset"):
            received["missing.txt"]


def test_restore_checks_every_file(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"foo.txt": "hello", "bar.txt": "world"})
    original = ferry.asset()
    filtered = ferry.asset(original, match="foo.txt")
    target = uris.join(original.uri, "foo.txt")
    store.backend(target).write_bytes(target, b"HELLO")  # same size, other bytes
    for number, value in enumerate([original, filtered]):
        received, pod2 = next_task(value, store, tmp_path, monkeypatch, f"task{number + 2}")
        with ferry.use_store(pod2), pytest.raises(ferry.IntegrityError, match="sha256 mismatch"):
            received.restore()
    for match in ("foo.txt", "*.txt"):  # a part read before the whole manifest is: only its entries become models
        received, pod2 = next_task(original, store, tmp_path, monkeypatch, f"part-{match}")
        with ferry.use_store(pod2), pytest.raises(ferry.IntegrityError, match="foo.txt.*sha256 mismatch"):
            received.restore(match=match)
        assert received._contents is None and not (pathlib.Path.cwd() / "foo.txt").exists()


def test_restoring_an_asset_imports_neither_pydantic_nor_the_workflow_models_nor_boto3(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"d/a.txt": "a", "e/b.txt": "b"})
    ref = ferry.asset().to_blob()
    code = f"""
import sys, ferry
store = ferry.Store(ferry.Settings(raw_data_prefix={store.raw_data_prefix!r}, cache_dir={str(tmp_path / "cache")!r}))
with ferry.use_store(store):
    ferry.Asset.from_blob(ferry.BlobRef.model_validate_json({ref.to_json()!r})).restore(match="d/**", to="out")
print(" ".join(sys.modules))
"""
    environ = {**os.environ, "AWS_CONFIG_FILE": str(tmp_path / "absent")}  # the S3 store: configured plainly
    run = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert not {"pydantic", "ferry.data.manifest_models", "ferry.api.resource", "ferry.values.typed", "boto3",
                "importlib.metadata", "concurrent.futures"} & set(run.stdout.split())  # each 10-50 ms
    assert [p.relative_to(tmp_path / "task1/out").as_posix() for p in (tmp_path / "task1/out").rglob("*.txt")] == \
        ["d/a.txt"]


def test_restoring_a_part_checks_the_manifest_digest(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"a/x.txt": "x", "b/y.txt": "y"})
    original = ferry.asset()
    where = uris.join(original.uri, manifest.NAME)
    stored = manifest.parse(store.backend(where).read_bytes(where), where)
    changed = stored.model_copy(update={"files": [stored.files[0].model_copy(update={"path": "a/z.txt"}),
                                                  stored.files[1]]})
    store.backend(where).write_bytes(where, changed.to_bytes())  # well formed, but not the one the reference pins
    received, pod2 = next_task(original, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2), pytest.raises(ferry.IntegrityError, match="manifest digest"):
        received.restore(match="a/**")


def test_restoring_a_part_makes_no_models(local_store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {f"d{i}/f{j}.txt": f"{i}{j}" for i in range(3) for j in range(4)})
    with ferry.use_store(local_store):
        original = ferry.asset()
    received, pod2 = next_task(original, local_store, tmp_path, monkeypatch)
    made, construct = [], manifest.Entry.model_construct
    monkeypatch.setattr(manifest.Entry, "model_construct",
                        lambda **fields: made.append(fields["path"]) or construct(**fields))
    with ferry.use_store(pod2):
        restored = received.restore(match="d1/**")
        assert sorted(restored) == [f"d1/f{j}.txt" for j in range(4)] and made == []
        assert [path.read_text() for path in restored.values()] == ["10", "11", "12", "13"]
        assert received.restore(match="d2/f0.txt", to="again") == {"d2/f0.txt": pathlib.Path.cwd() / "again/d2/f0.txt"}
        assert len(received) == 12  # the whole manifest, read when it is asked for
        assert received.restore(match="d0/f1.txt", to="cached")["d0/f1.txt"].read_text() == "01"


@pytest.mark.parametrize("entries", [{"../evil.txt": "a.txt"}, {"/etc/evil": "a.txt"}, {"x/../../evil": "a.txt"},
                                     {"x/./evil": "a.txt"}, {"x//evil": "a.txt"}, {"nul\0": "a.txt"}])
def test_entries_cannot_escape(entries, local_store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"a.txt": "a"})
    with ferry.use_store(local_store), pytest.raises(ferry.PathEscapeError, match="not a clean relative path"):
        ferry.asset(entries)


def test_names_that_only_look_like_escapes_on_windows_stay_inside(local_store, tmp_path, monkeypatch):
    """On POSIX, ``C:/x`` is a folder named ``C:`` and ``a\\..\\x`` one file name: both legal, neither leaves."""
    workdir(tmp_path, monkeypatch, "task1", {"a.txt": "a"})
    with ferry.use_store(local_store):
        restored = ferry.asset({"C:/evil": "a.txt", "a\\..\\evil": "a.txt"}).restore(to="out")
    assert sorted(restored.values()) == [pathlib.Path.cwd() / "out" / "C:" / "evil", pathlib.Path.cwd() / "out" / "a\\..\\evil"]
    assert sorted(p.name for p in (pathlib.Path.cwd() / "out").iterdir()) == ["C:", "a\\..\\evil"]


def test_sources_outside_the_base_directory_or_linking_out_are_refused(local_store, tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_text("secret")
    root = workdir(tmp_path, monkeypatch, "task1", {"a.txt": "a", "sub/b.txt": "b"})
    with ferry.use_store(local_store):
        with pytest.raises(ferry.PathEscapeError, match="outside the base directory"):
            ferry.asset("../secret.txt")
        with pytest.raises(ferry.PathEscapeError, match="outside the base directory"):
            ferry.asset("../a.txt", at="sub")  # paths are relative to the base directory
        (root / "link.txt").symlink_to(tmp_path / "secret.txt")
        with pytest.raises(ferry.PathEscapeError, match="outside the base directory"):
            ferry.asset("link.txt")
        with pytest.raises(ferry.PathEscapeError, match="link.txt links to"):
            ferry.asset()
        # named explicitly, a file from anywhere is fine: its path in the asset is the one given
        assert list(ferry.asset({"copied.txt": tmp_path / "secret.txt"})) == ["copied.txt"]
        with pytest.raises(FileNotFoundError, match="no such file"):
            ferry.asset("missing.txt")
        with pytest.raises(NotADirectoryError, match="at='a.txt'"):
            ferry.asset(at="a.txt")
        with pytest.raises(ValueError, match="reserved for Ferry's manifest"):
            ferry.asset({manifest.NAME: "a.txt"})


def test_restore_targets_cannot_escape(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"images/a.jpg": "a"})
    received, pod2 = next_task(ferry.asset(), store, tmp_path, monkeypatch)
    outside = tmp_path / "outside"
    outside.mkdir()
    (pathlib.Path.cwd() / "images").symlink_to(outside, target_is_directory=True)
    with ferry.use_store(pod2):
        with pytest.raises(ferry.PathEscapeError, match="resolves outside"):
            received.restore()
        with pytest.raises(ferry.PathEscapeError, match="not a clean relative path"):
            received["../images/a.jpg"]
    assert list(outside.iterdir()) == []


def test_a_crafted_manifest_cannot_write_outside(store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1")
    data = json.dumps({"files": [{"path": "../escape.txt", "size": 1, "sha256": "0" * 64}]}).encode()
    uri = store.random_remote_path()
    store.backend(uri).write_bytes(uris.join(uri, manifest.NAME), data)
    crafted = ferry.Asset(ferry.BlobRef(uri=uri, kind="asset", manifest_digest=manifest.digest_of(data)))
    with pytest.raises(ferry.PathEscapeError, match="escape.txt"):
        crafted.restore()
    with pytest.raises(ferry.PathEscapeError, match="escape.txt"):
        crafted.restore(match="other/**")  # a bad entry refuses the manifest, even where it is not restored
    assert not (tmp_path / "escape.txt").exists()


def test_an_asset_is_a_thin_serializable_reference(local_store, tmp_path, monkeypatch):
    workdir(tmp_path, monkeypatch, "task1", {"a.txt": "a"})
    with ferry.use_store(local_store):
        published = ferry.asset()
        assert len(published) == 1  # reads and caches the manifest
        ref = published.to_blob()
        assert pickle.loads(pickle.dumps(published)) == published
        assert pickle.loads(pickle.dumps(published)).__dict__ == {"_ref": ref, "_contents": None}
        assert ferry.from_blob(ref.to_json()) == ferry.Asset.from_blob(ref) == published
        assert ferry.from_blob(ref.model_dump()) != ferry.asset()  # another asset, another location
    assert values.kind_of(ferry.Asset) == resource.Kind.ASSET
    with pytest.raises(ValueError, match="is a file, not an asset"):
        ferry.Asset(ferry.BlobRef(uri="file:///x", kind="file"))


@pytest.mark.parametrize(("pattern", "matches", "misses"), [
    ("*.md", ["a.md", ".hidden.md"], ["b/a.md", "a.mdx"]),
    ("**/*.md", ["a.md", "b/a.md", "b/c/a.md"], ["a.txt", "b/a.txt"]),
    ("**/*.{jpg,png}", ["x.jpg", "d/y.png", "d/e/z.jpg"], ["n.gif", "d/w.jpeg"]),
    ("images/*.{jpg,png}", ["images/a.jpg", "images/b.png"], ["images/c/d.jpg", "a.jpg"]),
    ("a/**", ["a/b", "a/b/c"], ["a", "ab/c"]),
    ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["a/xb", "b"]),
    ("{src,lib/**}/*.py", ["src/a.py", "lib/a.py", "lib/x/a.py"], ["src/x/a.py", "a.py"]),
    ("a{b,c{d,e}}f", ["abf", "acdf", "acef"], ["acf", "af"]),
    ("file?.[ch]", ["file1.c", "filex.h"], ["file10.c", "file1.o", "file/.c"]),
    ("[!a]*", ["b", "ba"], ["a", "ab"]),
    ("\\*.txt", ["*.txt"], ["a.txt"]),
    ("lit{er}al}", ["literal}"], ["lital}"]),
    ("(x)+|y.txt", ["(x)+|y.txt"], ["x.txt", "y.txt"]),
])
def test_glob_translation(pattern, matches, misses):
    regex = assets.compile_glob(pattern)
    assert [p for p in matches if regex.fullmatch(p)] == matches
    assert [p for p in misses if regex.fullmatch(p)] == []


def test_an_unclosed_brace_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'\{' at 2 is never closed"):
        assets.compile_glob("*.{jpg,png")


def test_asset_names_legal_in_posix_and_s3_keys_round_trip(store, tmp_path, monkeypatch):
    from tests.runtime.values.test_directories import POSIX_NAMES, posix_tree, read_names

    posix_tree(workdir(tmp_path, monkeypatch, "task1"))
    made = ferry.asset()
    assert sorted(made) == sorted(POSIX_NAMES)
    received, pod2 = next_task(made, store, tmp_path, monkeypatch)
    with ferry.use_store(pod2):
        restored = received.restore(to="back")
        assert read_names(restored) == {n: n for n in POSIX_NAMES}
        assert received.restore(match="new?line.txt", to="nl") == {
            "new\nline.txt": pathlib.Path.cwd() / "nl" / "new\nline.txt"}
        assert received.restore(match="back\\\\slash", to="one") == {"back\\slash": pathlib.Path.cwd() / "one" / "back\\slash"}
        again = ferry.asset({"renamed\\too #1.txt": received["100%"]})
        assert ferry.from_blob(ferry.to_blob(again))["renamed\\too #1.txt"].restore(to="two").read_text() == "100%"

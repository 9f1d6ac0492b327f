"""Helpers for the chart's tests: render it with the pinned helm and pick objects out of it."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.cluster import versions
from tests.cluster.fixtures import REPO, Helm

CHART = REPO / "helm" / "ferry"
RELEASE_NAMESPACE = "ferry-system"


class Rendered(list):
    """The objects ``helm template`` printed, in order, as dicts."""

    def of(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict]:
        return [o for o in self if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
                and (namespace is None or o["metadata"].get("namespace") == namespace)]

    def one(self, kind: str, name: str | None = None, namespace: str | None = None) -> dict:
        found = self.of(kind, name, namespace)
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}: {[o['metadata'] for o in found]}"
        return found[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self}


def write_values(path: pathlib.Path, values: dict) -> pathlib.Path:
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture
def render(helm: Helm, tmp_path: pathlib.Path):
    """``render(values)`` → the objects of ``helm template`` (fails the test if helm does)."""

    def run(values: dict | None = None, release: str = "ferry", namespace: str = RELEASE_NAMESPACE) -> Rendered:
        result = template(helm, tmp_path, values, release, namespace)
        assert result.returncode == 0, result.stderr
        return Rendered(o for o in yaml.safe_load_all(result.stdout) if o)

    return run


def template(helm: Helm, tmp_path: pathlib.Path, values: dict | None, release: str = "ferry",
             namespace: str = RELEASE_NAMESPACE):
    files = ["-f", str(write_values(tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml", values))] if values else []
    return helm("template", release, str(CHART), "--namespace", namespace, "--kube-version", versions.KUBERNETES,
                *files, check=False)

"""The workspace: every file a studio writes, under one directory, named by ids it makes itself.

An uploaded file's name is only ever shown, never used as a path. A model or bundle directory is
complete once its meta.json is written (last); a directory without one is a failed upload or split
and is removed when the studio starts. Counts are bounded, so a page left open cannot fill the disk.

    workspace/models/<id>/model.onnx, meta.json
    workspace/bundles/<id>/bundle/ (manifest.json, head.onnx, tail.onnx, labels.json), meta.json,
                         calibration.png, inputs/<upload>/, results/<set>/<k>.png, bundle-<id>.tar.gz
    workspace/shipped/<name>/model.onnx  (shipped models that `export` builds)
    workspace/tmp/                       (uploads while they stream in)
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any

from splitcomp_core.files import atomic_write_text
from splitcomp_tools.studio.config import MAX_BUNDLES, MAX_MODELS, MAX_RESULT_SETS
from splitcomp_tools.studio.errors import Refused, not_found

_ID = re.compile(r"^[0-9a-f]{12}$")
_META = "meta.json"
MARKER = ".splitcomp-studio"  # says a directory is a studio workspace, whose unfinished entries may be removed


def new_id() -> str:
    return secrets.token_hex(6)


def display_name(filename: str | None, fallback: str) -> str:
    """An uploaded file's name as the page may show it: the last path part, printable, at most 80 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:80] or fallback


@dataclasses.dataclass
class ModelEntry:
    """An uploaded model (its ONNX file in the workspace) or a shipped one (`shipped` is its catalog id)."""

    id: str
    name: str
    format: str  # "onnx", "torchscript" or "shipped"
    path: Path
    created: float
    shipped: str | None = None
    input_shape: list[int] | None = None  # the size to analyse at, for a model whose declared size is dynamic
    analyses: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "format": self.format,
            "created": self.created,
            "input_shape": self.input_shape,
        }


@dataclasses.dataclass
class BundleEntry:
    """A bundle split in the studio, with what the page made of it since (calibration, test images)."""

    id: str
    dir: Path
    model_id: str
    model_name: str
    at: list[str]
    created: float
    verification: dict[str, Any]

    @property
    def bundle_dir(self) -> Path:
        return self.dir / "bundle"

    @property
    def plot(self) -> Path:
        return self.dir / "calibration.png"

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model_id": self.model_id,
            "model_name": self.model_name,
            "at": self.at,
            "created": self.created,
            "verification": self.verification,
        }


class Workspace:
    """Models and bundles on disk, indexed in memory; safe to use from the server's worker threads."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        if self.root.is_dir() and any(self.root.iterdir()) and not (self.root / MARKER).is_file():
            raise Refused(
                400, f"{root}: is not empty and not a studio workspace; give --workspace a new or empty directory"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / MARKER).touch()
        self.models_dir, self.bundles_dir = self.root / "models", self.root / "bundles"
        self.shipped_dir, self.tmp_dir = self.root / "shipped", self.root / "tmp"
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # uploads cut off when the last server stopped
        for folder in (self.models_dir, self.bundles_dir, self.shipped_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._models: dict[str, ModelEntry] = {}
        self._bundles: dict[str, BundleEntry] = {}
        for meta in _complete(self.models_dir):
            path = self.models_dir / meta["id"] / "model.onnx"
            self._models[meta["id"]] = ModelEntry(
                meta["id"], meta["name"], meta["format"], path, meta["created"], input_shape=meta.get("input_shape")
            )
        for meta in _complete(self.bundles_dir):
            self._bundles[meta["id"]] = BundleEntry(
                meta["id"],
                self.bundles_dir / meta["id"],
                meta["model_id"],
                meta["model_name"],
                meta["at"],
                meta["created"],
                meta["verification"],
            )

    def tmp_path(self) -> Path:
        return self.tmp_dir / new_id()

    # models

    def models(self) -> list[ModelEntry]:
        with self._lock:
            return sorted(self._models.values(), key=lambda m: m.created)

    def model(self, key: str) -> ModelEntry:
        with self._lock:
            entry = self._models.get(key)
        if entry is None:
            raise not_found("model", key)
        return entry

    def new_model_dir(self) -> tuple[str, Path]:
        with self._lock:
            if len(self._models) >= MAX_MODELS:
                raise Refused(409, f"the workspace holds {MAX_MODELS} models; delete one (DELETE /api/models/ID)")
        key = new_id()
        folder = self.models_dir / key
        folder.mkdir()
        return key, folder

    def add_model(self, entry: ModelEntry) -> None:
        """Publish a model whose directory is complete (its meta.json is the last file written)."""
        atomic_write_text(entry.path.parent / _META, json.dumps(entry.meta(), indent=1))
        with self._lock:
            self._models[entry.id] = entry

    def add_shipped(self, entry: ModelEntry) -> ModelEntry:
        """The in-memory entry of a shipped model (nothing of it is in models/); the first one made wins."""
        with self._lock:
            return self._models.setdefault(entry.id, entry)

    def delete_model(self, key: str) -> None:
        entry = self.model(key)
        if entry.shipped:
            raise Refused(409, f"{entry.name} is shipped with splitcomp and cannot be deleted")
        with self._lock:
            self._models.pop(key, None)
        shutil.rmtree(entry.path.parent, ignore_errors=True)

    # bundles

    def bundles(self) -> list[BundleEntry]:
        with self._lock:
            return sorted(self._bundles.values(), key=lambda b: b.created)

    def bundle(self, key: str) -> BundleEntry:
        with self._lock:
            entry = self._bundles.get(key) if _ID.match(key) else None
        if entry is None:
            raise not_found("bundle", key)
        return entry

    def new_bundle_dir(self) -> tuple[str, Path]:
        with self._lock:
            if len(self._bundles) >= MAX_BUNDLES:
                raise Refused(409, f"the workspace holds {MAX_BUNDLES} bundles; delete one (DELETE /api/bundles/ID)")
        key = new_id()
        folder = self.bundles_dir / key
        folder.mkdir()
        return key, folder

    def add_bundle(self, entry: BundleEntry) -> None:
        atomic_write_text(entry.dir / _META, json.dumps(entry.meta(), indent=1))
        with self._lock:
            self._bundles[entry.id] = entry

    def delete_bundle(self, key: str) -> None:
        entry = self.bundle(key)
        with self._lock:
            self._bundles.pop(key, None)
        shutil.rmtree(entry.dir, ignore_errors=True)

    def new_result_dir(self, entry: BundleEntry) -> tuple[str, Path]:
        """A folder for one classify request's overlay images; the oldest beyond MAX_RESULT_SETS are removed."""
        results = entry.dir / "results"
        results.mkdir(exist_ok=True)
        old = sorted(results.iterdir(), key=lambda p: p.stat().st_mtime)
        for stale in old[: max(0, len(old) - MAX_RESULT_SETS + 1)]:
            shutil.rmtree(stale, ignore_errors=True)
        key = new_id()
        (results / key).mkdir()
        return key, results / key

    def result_file(self, entry: BundleEntry, result: str, index: int) -> Path:
        path = entry.dir / "results" / result / f"{index}.png"
        if not _ID.match(result) or not path.is_file():
            raise not_found("result", f"{result}/{index}")
        return path


def _complete(folder: Path) -> list[dict[str, Any]]:
    """The meta.json of every finished entry in `folder`; unfinished directories are removed."""
    found = []
    for entry in sorted(folder.iterdir()):
        meta = entry / _META
        try:
            data = json.loads(meta.read_text())
            if data["id"] == entry.name and _ID.match(entry.name):
                found.append(data)
                continue
        except (OSError, ValueError, KeyError, TypeError):
            pass
        shutil.rmtree(entry, ignore_errors=True)
    return found

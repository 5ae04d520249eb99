"""A manifest may send codec entropy by default only with the tables for it: load_bundle checks, one line."""

import json
import shutil

import pytest

from splitcomp_core.bundle import load_bundle
from splitcomp_core.entropy import ENTROPY_FILE
from splitcomp_core.errors import BundleError
from splitcomp_core.head import HeadPipeline


def _with_default(bundle, tmp_path, **quantization):
    path = tmp_path / "bundle"
    shutil.copytree(bundle.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["quantization"].update(quantization)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_covered_entropy_default_loads_and_the_head_sends_it(tiny_entropy_bundle, tmp_path):
    bundle = load_bundle(_with_default(tiny_entropy_bundle, tmp_path, codec="entropy", bits=4, mode="clip"))
    head = HeadPipeline(bundle, providers=["cpu"])
    assert head.config.codec == "entropy" and head.config.bits == 4


def test_an_entropy_default_without_its_table_is_refused_naming_the_file(tiny_bundle, tiny_entropy_bundle, tmp_path):
    with pytest.raises(BundleError, match=f"{ENTROPY_FILE}: no entropy table for") as missing:
        load_bundle(_with_default(tiny_bundle, tmp_path / "none", codec="entropy", bits=4, mode="clip"))
    assert "\n" not in str(missing.value)
    document_path = _with_default(tiny_entropy_bundle, tmp_path / "short", codec="entropy", bits=4, mode="clip")
    document = json.loads((document_path / ENTROPY_FILE).read_text())
    document["tables"] = [t for t in document["tables"] if not (t["bits"] == 4 and t["mode"] == "clip")]
    (document_path / ENTROPY_FILE).write_text(json.dumps(document))
    with pytest.raises(BundleError, match="at 4 bits \\(clip\\)"):
        load_bundle(document_path)
    truncated = _with_default(tiny_entropy_bundle, tmp_path / "cut", codec="entropy", bits=4, mode="clip")
    text = (truncated / ENTROPY_FILE).read_text()
    (truncated / ENTROPY_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match=ENTROPY_FILE):
        load_bundle(truncated)

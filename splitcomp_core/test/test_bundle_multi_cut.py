"""Multi-cut bundles (format_version 2): written and read back, every cut verified, and refused when inconsistent."""

import json
import re
import shutil

import pytest

from splitcomp_core.bundle import (
    MANIFEST_FILE,
    CutChoice,
    load_bundle,
    multi_cut_model_id,
    read_manifest,
    update_quantization,
    write_multi_cut_bundle,
)
from splitcomp_core.errors import BundleError


def test_every_cut_loads_with_its_own_model_id_shapes_and_range(tiny_multi_cut_bundle, tiny_bundle):
    bundle = load_bundle(tiny_multi_cut_bundle.path)
    assert [c.cut_id for c in bundle.cuts] == ["feat", "pooled"]
    feat, pooled = bundle.all_cuts()
    assert (feat.cut_id, pooled.cut_id) == ("feat", "pooled")
    assert feat.manifest.model_id == tiny_bundle.manifest.model_id != pooled.manifest.model_id
    assert feat.manifest.cut[0].shape == [1, 4, 16, 16] and pooled.manifest.cut[0].shape == [1, 4, 1, 1]
    assert pooled.manifest.quantization.calibrated["p"]["per_tensor"]["max"] == 3.0
    assert (bundle.cuts[0].min_mbps, bundle.cuts[0].max_mbps) == (0.0, 10.0)
    assert (bundle.cuts[1].min_mbps, bundle.cuts[1].max_mbps) == (10.0, None)
    assert bundle.cuts[0].covers(9.99) and not bundle.cuts[0].covers(10.0) and bundle.cuts[1].covers(1e6)
    assert bundle.cuts[1].info == {"bytes": 4}
    assert bundle.link == {"transport_overhead_ms": 1.0}
    # The bundle's own fields are its default cut's, so code that knows one cut keeps working.
    assert bundle.cut_id == "feat" and bundle.manifest == feat.manifest and bundle.head_path == feat.head_path
    assert bundle.labels == feat.labels == pooled.labels
    data = json.loads((bundle.path / MANIFEST_FILE).read_text())
    assert data["format_version"] == 2
    assert data["model_id"] == multi_cut_model_id([feat.manifest.model_id, pooled.manifest.model_id])


def test_a_single_cut_bundle_loads_as_before(tiny_bundle):
    bundle = load_bundle(tiny_bundle.path)
    assert bundle.cut_id == "" and bundle.cuts == [] and bundle.all_cuts() == [bundle]
    assert json.loads((bundle.path / MANIFEST_FILE).read_text())["format_version"] == 1


def test_each_cut_is_a_single_cut_bundle_of_its_own(tiny_multi_cut_bundle):
    for choice in tiny_multi_cut_bundle.cuts:
        alone = load_bundle(tiny_multi_cut_bundle.path / "cuts" / choice.cut_id)
        assert alone.manifest == choice.bundle.manifest and alone.cuts == []


def test_calibrating_the_whole_multi_cut_bundle_is_refused_naming_its_cuts(tiny_multi_cut_bundle):
    with pytest.raises(BundleError, match="multi-cut bundle; calibrate one of its cuts") as info:
        update_quantization(tiny_multi_cut_bundle.path, tiny_multi_cut_bundle.manifest.quantization)
    assert str(tiny_multi_cut_bundle.path / "cuts" / "pooled") in str(info.value)


def test_read_manifest_points_to_load_bundle_for_a_multi_cut_manifest(tiny_multi_cut_bundle):
    with pytest.raises(BundleError, match="multi-cut bundle's manifest"):
        read_manifest(tiny_multi_cut_bundle.path / MANIFEST_FILE)


@pytest.fixture
def copy(tiny_multi_cut_bundle, tmp_path):
    out = tmp_path / "multi"
    shutil.copytree(tiny_multi_cut_bundle.path, out)
    return out


def _edit(bundle, edit, restamp=True):
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    if restamp:
        data["model_id"] = multi_cut_model_id([c["model_id"] for c in data["cuts"]])
    path.write_text(json.dumps(data))


BROKEN = {
    "duplicate_cut_id": (lambda d: d["cuts"][1].update(cut_id="feat"), "cut_id values must be unique"),
    "unknown_default": (lambda d: d.update(default_cut="nope"), "default_cut 'nope' is not one of the cuts"),
    "path_in_cut_id": (lambda d: d["cuts"][1].update(cut_id="../x"), "cuts[1].cut_id"),
    "gap": (lambda d: d["cuts"][1]["bandwidth_mbps"].update(min=12.0), "no gap"),
    "closed_last_range": (lambda d: d["cuts"][1]["bandwidth_mbps"].update(max=50.0), "the last one open"),
    "not_from_zero": (lambda d: d["cuts"][0]["bandwidth_mbps"].update(min=1.0), "from 0"),
    "wrong_cut_model_id": (lambda d: d["cuts"][1].update(model_id="sha256:" + "0" * 64), "the cut was replaced"),
    "missing_cut_dir": (lambda d: d["cuts"][1].update(cut_id="elsewhere"), "bundle directory not found"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_an_inconsistent_multi_cut_bundle_is_refused(copy, name):
    edit, problem = BROKEN[name]
    _edit(copy, edit)
    with pytest.raises(BundleError, match=re.escape(problem)):
        load_bundle(copy)


def test_an_edited_manifest_does_not_match_its_digest(copy):
    _edit(copy, lambda d: d["cuts"].reverse(), restamp=False)
    with pytest.raises(BundleError, match="not the digest of the cuts' model_ids"):
        load_bundle(copy)


def test_cuts_of_different_models_are_refused(copy, tiny_multi_cut_bundle):
    sub = copy / "cuts" / "pooled" / MANIFEST_FILE
    data = json.loads(sub.read_text())
    data["input"]["mean"] = [0.1, 0.2, 0.3]
    sub.write_text(json.dumps(data))
    with pytest.raises(BundleError, match="input differs from cut 'feat'") as info:
        load_bundle(copy)
    assert str(info.value).startswith(str(copy / "cuts" / "pooled"))


def test_writing_is_atomic_and_refuses_inconsistent_cuts(tmp_path, tiny_multi_cut_bundle, tiny_bundle):
    feat, pooled = tiny_multi_cut_bundle.all_cuts()
    bad = [CutChoice("a", feat, 0.0, 5.0), CutChoice("b", pooled, 6.0, None)]
    with pytest.raises(BundleError, match="no gap") as info:
        write_multi_cut_bundle(tmp_path / "out", bad, "a", {})
    assert str(tmp_path / "out") in str(info.value)
    assert list(tmp_path.iterdir()) == []
    good = [CutChoice("a", feat, 0.0, 5.0), CutChoice("b", pooled, 5.0, None)]
    written = write_multi_cut_bundle(tmp_path / "out", good, "b", {}, plan={"agreement": 0.99})
    assert written.cut_id == "b" and [c.cut_id for c in written.cuts] == ["a", "b"]
    assert json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())["plan"] == {"agreement": 0.99}
    with pytest.raises(BundleError, match="already exists"):
        write_multi_cut_bundle(tmp_path / "out", good, "b", {})

"""Bundle write/load round trips and every way a bundle is refused (with the offending file named)."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tiny_models import onnx_model

from splitcomp_core.bundle import (
    FORMAT_VERSION,
    NEWEST_FORMAT_VERSION,
    InputSpec,
    Manifest,
    OutputSpec,
    QuantizationSpec,
    TensorSpec,
    compute_model_id,
    load_bundle,
    model_id_of_files,
    read_manifest,
    update_quantization,
    write_bundle,
)
from splitcomp_core.errors import BundleError

CLASSES = 3


def _model(nodes, inputs, outputs, initializers=()) -> bytes:
    return onnx_model(nodes, inputs, outputs, initializers).SerializeToString()


def _head(out_name="feat", batch=1, image_type=TensorProto.FLOAT, size=(4, 4)) -> bytes:
    """image [batch,3,*size] (cast to float if `image_type` is not) -> Relu -> out_name [batch,3,4,4]."""
    nodes = [helper.make_node("Relu", ["image"], [out_name])]
    if image_type != TensorProto.FLOAT:
        nodes = [
            helper.make_node("Cast", ["image"], ["image32"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["image32"], [out_name]),
        ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("image", image_type, [batch, 3, *size])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, 3, 4, 4])],
    )


def _tail(extra_input=False, weights_as_input=False, feat_type=TensorProto.FLOAT, feat_shape=(1, 3, 4, 4)) -> bytes:
    """feat [1,3,4,4] (cast to float if `feat_type` is not) -> Flatten -> MatMul W[48,CLASSES] -> logits [1,CLASSES]."""
    w = numpy_helper.from_array(np.arange(48 * CLASSES, dtype=np.float32).reshape(48, CLASSES) / 100, "W")
    inputs = [helper.make_tensor_value_info("feat", feat_type, list(feat_shape))]
    nodes = [helper.make_node("Flatten", ["feat"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["mm"])]
    if feat_type != TensorProto.FLOAT:
        nodes.insert(0, helper.make_node("Cast", ["feat"], ["feat32"], to=TensorProto.FLOAT))
        nodes[1].input[0] = "feat32"
    if extra_input:
        inputs.append(helper.make_tensor_value_info("bias", TensorProto.FLOAT, [1, CLASSES]))
        nodes.append(helper.make_node("Add", ["mm", "bias"], ["logits"]))
    else:
        nodes.append(helper.make_node("Identity", ["mm"], ["logits"]))
    if weights_as_input:  # pre-IR-4 style: initializers also listed as graph inputs
        inputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [48, CLASSES]))
    return _model(nodes, inputs, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])], [w])


def _manifest(**input_changes) -> Manifest:
    spec = InputSpec("image", [1, 3, 4, 4], 4, 4, "RGB", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    return Manifest(
        format_version=FORMAT_VERSION,
        model_id="",
        source="unit-test model",
        cut=[TensorSpec("feat", [1, 3, 4, 4], "float32")],
        input=dataclasses.replace(spec, **input_changes),
        output=OutputSpec("logits", [1, CLASSES], "logits"),
        verification={"max_abs_diff": 0.0, "samples": 4},
    )


LABELS = ["cat", "dog", "bird"]


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    write_bundle(out, _head(), _tail(), _manifest(), LABELS)
    return out


def _edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _replace_models(bundle: Path, head: bytes | None = None, tail: bytes | None = None) -> None:
    """Swap model files and re-stamp model_id, so the check under test is the one that fires."""
    head = head if head is not None else (bundle / "head.onnx").read_bytes()
    tail = tail if tail is not None else (bundle / "tail.onnx").read_bytes()
    (bundle / "head.onnx").write_bytes(head)
    (bundle / "tail.onnx").write_bytes(tail)
    _edit_manifest(bundle, lambda d: d.update(model_id=compute_model_id(head, tail)))


def test_round_trip_keeps_everything(tmp_path):
    head, tail, manifest = _head(), _tail(), _manifest(resize="center_crop", resize_size=5)
    written = write_bundle(tmp_path / "b", head, tail, manifest, LABELS)
    loaded = load_bundle(tmp_path / "b")
    assert loaded == written
    assert loaded.path == tmp_path / "b"
    assert loaded.head_path.read_bytes() == head and loaded.tail_path.read_bytes() == tail
    assert loaded.labels == LABELS
    assert loaded.manifest.model_id == compute_model_id(head, tail)
    expected = dataclasses.replace(manifest, model_id=compute_model_id(head, tail), labels_file="labels.json")
    assert loaded.manifest == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_without_labels_there_is_no_labels_file(tmp_path):
    bundle = write_bundle(tmp_path / "b", _head(), _tail(), _manifest())
    assert bundle.labels is None and bundle.manifest.labels_file is None
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["head.onnx", "manifest.json", "tail.onnx"]


def test_model_id_depends_on_the_split_point_and_matches_streamed_files(tmp_path):
    assert compute_model_id(b"ab", b"c") != compute_model_id(b"a", b"bc")
    assert compute_model_id(b"ab", b"c") != compute_model_id(b"c", b"ab")
    head, tail = np.random.default_rng(1).bytes(3_000_000), b"tail"
    (tmp_path / "h").write_bytes(head)
    (tmp_path / "t").write_bytes(tail)
    assert model_id_of_files(tmp_path / "h", tmp_path / "t") == compute_model_id(head, tail)
    assert compute_model_id(head, tail).startswith("sha256:") and len(compute_model_id(head, tail)) == 7 + 64


def test_initializers_listed_as_inputs_are_not_extra_tail_inputs(tmp_path):
    bundle = write_bundle(tmp_path / "b", _head(), _tail(weights_as_input=True), _manifest())
    assert bundle.manifest.cut[0].name == "feat"


def test_dynamic_batch_in_manifest_and_model_is_accepted(tmp_path):
    manifest = _manifest(shape=[-1, 3, 4, 4])
    manifest.cut[0].shape = [-1, 3, 4, 4]
    write_bundle(tmp_path / "b", _head(batch="N"), _tail(), manifest)
    loaded = load_bundle(tmp_path / "b").manifest
    assert loaded.cut[0].shape[0] == -1 and loaded.input.shape[0] == -1


def test_a_head_of_dynamic_size_takes_the_manifests_image_size(tmp_path):
    write_bundle(tmp_path / "b", _head(size=("h", "w")), _tail(), _manifest())
    assert load_bundle(tmp_path / "b").manifest.input.shape == [1, 3, 4, 4]
    with pytest.raises(BundleError, match="image input 'image' is float32 \\[1, 3, -1, 5\\]"):
        write_bundle(tmp_path / "c", _head(size=("h", 5)), _tail(), _manifest())


def _break_missing_manifest(b):
    (b / "manifest.json").unlink()
    return b / "manifest.json", "missing manifest"


def _break_invalid_json(b):
    (b / "manifest.json").write_text('{"format_version": 1,')
    return b / "manifest.json", "invalid JSON at line 1"


def _break_schema(b):
    _edit_manifest(b, lambda d: d["input"].update(color_order="XYZ"))
    return b / "manifest.json", "input.color_order"


def _break_missing_field(b):
    _edit_manifest(b, lambda d: d["quantization"].pop("bits"))
    return b / "manifest.json", "'bits' is a required property"


def _break_newer_version(b):
    _edit_manifest(b, lambda d: d.update(format_version=NEWEST_FORMAT_VERSION + 1, new_section={}))
    return b / "manifest.json", f"newer splitcomp (format_version {NEWEST_FORMAT_VERSION + 1})"


def _break_crop_without_size(b):
    _edit_manifest(b, lambda d: d["input"].update(resize="center_crop", resize_size=None))
    return b / "manifest.json", "resize_size"


def _break_nan(b):
    text = (b / "manifest.json").read_text().replace('"clip_max": 32.0', '"clip_max": NaN')
    (b / "manifest.json").write_text(text)
    return b / "manifest.json", "NaN is not valid JSON"


def _break_missing_head(b):
    (b / "head.onnx").unlink()
    return b / "head.onnx", "missing head model"


def _break_missing_tail(b):
    (b / "tail.onnx").unlink()
    return b / "tail.onnx", "missing tail model"


def _break_tampered_tail(b):
    with (b / "tail.onnx").open("ab") as f:
        f.write(b"\0")
    return b / "manifest.json", "does not match head.onnx + tail.onnx"


def _break_corrupt_head(b):
    _replace_models(b, head=b"\xff" * 64)
    return b / "head.onnx", "not a readable ONNX model"


def _break_cut_not_in_head(b):
    _replace_models(b, head=_head(out_name="other"))
    return b / "head.onnx", "cut tensor 'feat' is not an output of head.onnx"


def _break_cut_not_in_tail(b):
    _replace_models(b, head=_head(out_name="other"))
    _edit_manifest(b, lambda d: d["cut"][0].update(name="other"))
    return b / "tail.onnx", "cut tensor 'other' is not an input of tail.onnx"


def _break_tail_extra_input(b):
    _replace_models(b, tail=_tail(extra_input=True))
    return b / "tail.onnx", "['bias'] are not cut tensors"


def _break_cut_shape(b):
    _edit_manifest(b, lambda d: d["cut"][0].update(shape=[1, 3, 8, 8]))
    return b / "head.onnx", "[1, 3, 8, 8] in manifest.json"


def _break_head_input_size(b):
    _edit_manifest(b, lambda d: d["input"].update(shape=[1, 3, 8, 8], height=8, width=8))
    return b / "head.onnx", "image input 'image' is float32 [1, 3, 4, 4] in head.onnx but manifest.json input"


def _break_head_input_dtype(b):
    _replace_models(b, head=_head(image_type=TensorProto.DOUBLE))
    return b / "head.onnx", "image input 'image' is float64 [1, 3, 4, 4]"


def _break_tail_input_dtype(b):
    _replace_models(b, tail=_tail(feat_type=TensorProto.FLOAT16))
    return b / "tail.onnx", "cut tensor 'feat' is float16 [1, 3, 4, 4] in tail.onnx but float32"


def _break_tail_input_shape(b):
    _replace_models(b, tail=_tail(feat_shape=(1, 3, 2, 8)))
    return b / "tail.onnx", "cut tensor 'feat' is float32 [1, 3, 2, 8] in tail.onnx but float32 [1, 3, 4, 4]"


def _break_unknown_elem_type(b):
    tail = onnx.load_from_string(_tail())
    tail.graph.output[0].type.tensor_type.elem_type = 999
    _replace_models(b, tail=tail.SerializeToString())
    return b / "tail.onnx", "tensor 'logits' has unknown element type 999"


def _break_external_weights(b):
    onnx.save_model(
        onnx.load_from_string(_tail()),
        str(b / "tail.onnx"),
        save_as_external_data=True,
        location="tail.weights",
        size_threshold=0,
    )
    _replace_models(b, tail=(b / "tail.onnx").read_bytes())
    return b / "tail.onnx", "tensor 'W' keeps its data in an external file; a bundle must be self-contained"


def _break_huge_number(b):
    text = (b / "manifest.json").read_text().replace('"clip_max": 32.0', '"clip_max": 1e400')
    (b / "manifest.json").write_text(text)
    return b / "manifest.json", "quantization.clip_max: must be a finite number"


def _break_huge_number_in_a_list(b):
    text = (b / "manifest.json").read_text().replace("0.456", "-1e999")
    (b / "manifest.json").write_text(text)
    return b / "manifest.json", "input.mean[1]: must be a finite number"


def _break_output_name(b):
    _edit_manifest(b, lambda d: d["output"].update(name="probs"))
    return b / "tail.onnx", "output 'probs'"


def _break_label_count(b):
    (b / "labels.json").write_text(json.dumps([*LABELS, "fish"]))
    return b / "labels.json", "4 labels, but the model outputs 3 classes"


def _break_missing_labels(b):
    (b / "labels.json").unlink()
    return b / "labels.json", "missing"


def _break_labels_path_escape(b):
    _edit_manifest(b, lambda d: d.update(labels_file="../labels.json"))
    return b / "manifest.json", "labels_file must be a plain file name"


FAILURES = [
    _break_missing_manifest,
    _break_invalid_json,
    _break_schema,
    _break_missing_field,
    _break_newer_version,
    _break_crop_without_size,
    _break_nan,
    _break_missing_head,
    _break_missing_tail,
    _break_tampered_tail,
    _break_corrupt_head,
    _break_cut_not_in_head,
    _break_cut_not_in_tail,
    _break_tail_extra_input,
    _break_cut_shape,
    _break_output_name,
    _break_label_count,
    _break_missing_labels,
    _break_labels_path_escape,
    _break_head_input_size,
    _break_head_input_dtype,
    _break_tail_input_dtype,
    _break_tail_input_shape,
    _break_unknown_elem_type,
    _break_external_weights,
    _break_huge_number,
    _break_huge_number_in_a_list,
]


@pytest.mark.parametrize("breaker", FAILURES, ids=[f.__name__[len("_break_") :] for f in FAILURES])
def test_bad_bundle_is_refused_naming_the_file(bundle_dir, breaker):
    load_bundle(bundle_dir)  # sound before breaking it
    bad_file, problem = breaker(bundle_dir)
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_dir)
    message = str(info.value)
    assert message.startswith(str(bad_file)), message
    assert problem in message, message


def test_missing_or_non_directory_bundle(tmp_path):
    with pytest.raises(BundleError, match="bundle directory not found") as info:
        load_bundle(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match="not a directory"):
        load_bundle(tmp_path / "file")


def test_newer_format_version_is_reported_before_schema_errors(tmp_path):
    data = {"format_version": 7, "something": "unknown to us"}
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"newer splitcomp \(format_version 7\).*upgrade"):
        read_manifest(tmp_path / "m.json")


def test_write_refuses_to_overwrite_and_leaves_existing_bundle(tmp_path, bundle_dir):
    before = {p.name: p.read_bytes() for p in bundle_dir.iterdir()}
    with pytest.raises(BundleError, match="already exists") as info:
        write_bundle(bundle_dir, _head(), _tail(), _manifest())
    assert str(bundle_dir) in str(info.value)
    assert {p.name: p.read_bytes() for p in bundle_dir.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_overwrite_never_replaces_a_directory_that_is_not_a_bundle(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="refusing to replace what is not a bundle"):
        write_bundle(precious, _head(), _tail(), _manifest(), overwrite=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_bundle(empty, _head(), _tail(), _manifest(), overwrite=True).path == empty


def test_overwrite_replaces_the_bundle_completely(tmp_path, bundle_dir):
    rewritten = write_bundle(bundle_dir, _head(), _tail(weights_as_input=True), _manifest(), overwrite=True)
    assert rewritten.labels is None
    assert not (bundle_dir / "labels.json").exists()
    assert load_bundle(bundle_dir).manifest.model_id == compute_model_id(_head(), _tail(weights_as_input=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_failed_write_leaves_nothing_behind_and_names_the_target(tmp_path, bundle_dir):
    target = tmp_path / "new"
    with pytest.raises(BundleError) as info:
        write_bundle(target, _head(out_name="other"), _tail(), _manifest(), LABELS)
    assert str(info.value).startswith(str(target / "head.onnx")), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]

    before = {p.name: p.read_bytes() for p in bundle_dir.iterdir()}
    with pytest.raises(BundleError):
        write_bundle(bundle_dir, _head(), _tail(extra_input=True), _manifest(), overwrite=True)
    assert {p.name: p.read_bytes() for p in bundle_dir.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_write_refuses_labels_that_do_not_match_the_classes(tmp_path):
    with pytest.raises(BundleError, match="2 labels, but the model outputs 3 classes"):
        write_bundle(tmp_path / "b", _head(), _tail(), _manifest(), ["a", "b"])
    assert list(tmp_path.iterdir()) == []


def test_update_quantization_writes_calibrated_ranges_atomically(bundle_dir):
    model_id = load_bundle(bundle_dir).manifest.model_id
    ranges = {
        "feat": {
            "per_tensor": {"min": np.float32(0.0), "max": np.float32(5.5)},
            "per_channel": {"min": np.zeros(3, np.float32), "max": np.array([1.5, 2.5, 5.5], np.float32)},
            "method": "percentile-99.9",
            "bits": 4,
        }
    }
    update_quantization(bundle_dir, QuantizationSpec(bits=3, mode="per_channel", codec="zstd", calibrated=ranges))
    q = load_bundle(bundle_dir).manifest.quantization
    assert (q.bits, q.mode, q.codec) == (3, "per_channel", "zstd")
    assert q.calibrated["feat"]["per_channel"]["max"] == [1.5, 2.5, 5.5]
    assert q.calibrated["feat"]["per_tensor"] == {"min": 0.0, "max": 5.5}
    assert load_bundle(bundle_dir).manifest.model_id == model_id
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["head.onnx", "labels.json", "manifest.json", "tail.onnx"]


@pytest.mark.parametrize(
    "quantization, problem",
    [
        (QuantizationSpec(mode="per_channel"), "per_channel ranges are missing for ['feat']"),
        (QuantizationSpec(mode="calibrated"), "per_tensor ranges are missing for ['feat']"),
        (QuantizationSpec(clip_min=1.0, clip_max=1.0), "clip_max (1.0) must be > clip_min (1.0)"),
        (
            QuantizationSpec(
                calibrated={
                    "feat": {
                        "per_tensor": {"min": 0, "max": 1},
                        "method": "m",
                        "per_channel": {"min": [0, 0], "max": [1, 1]},
                    }
                }
            ),
            "one value per channel (3), got 2 and 2",
        ),
        (QuantizationSpec(calibrated={"x": {"per_tensor": {"min": 0, "max": 1}, "method": "m"}}), "'x' is not a cut"),
        (QuantizationSpec(bits=9), "quantization.bits"),
        (
            QuantizationSpec(calibrated={"feat": {"per_tensor": {"min": 0, "max": np.float32("inf")}, "method": "m"}}),
            "must be finite",
        ),
    ],
)
def test_update_quantization_refuses_bad_ranges_and_keeps_the_manifest(bundle_dir, quantization, problem):
    before = (bundle_dir / "manifest.json").read_bytes()
    with pytest.raises(BundleError) as info:
        update_quantization(bundle_dir, quantization)
    assert str(info.value).startswith(str(bundle_dir / "manifest.json"))
    assert problem in str(info.value)
    assert (bundle_dir / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["head.onnx", "labels.json", "manifest.json", "tail.onnx"]


def test_writes_reach_the_disk_before_they_are_renamed_into_place(tmp_path, monkeypatch):
    """A power cut on the robot must leave the old or the new bundle, never an empty manifest.json."""
    events = []
    fsync, rename, replace = os.fsync, os.rename, os.replace

    def record_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def record_rename(src, dst, *, move=rename):
        events.append(("rename", Path(dst)))
        move(src, dst)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "rename", record_rename)
    monkeypatch.setattr(os, "replace", lambda src, dst: record_rename(src, dst, move=replace))
    out = tmp_path / "b"
    for overwrite in (False, True):
        events.clear()
        write_bundle(out, _head(), _tail(), _manifest(), LABELS, overwrite=overwrite)
        published = events.index(("rename", out))
        before, after = events[:published], events[published + 1 :]
        assert {("fsync", p.stat().st_ino) for p in (out, *out.iterdir())} <= set(before)
        assert ("fsync", tmp_path.stat().st_ino) in after

    events.clear()
    update_quantization(out, QuantizationSpec(bits=8))
    published = events.index(("rename", out / "manifest.json"))
    assert ("fsync", (out / "manifest.json").stat().st_ino) in events[:published]
    assert ("fsync", out.stat().st_ino) in events[published + 1 :]
    assert load_bundle(out).manifest.quantization.bits == 8


def test_non_finite_numbers_are_refused_naming_the_field():
    data = dataclasses.replace(_manifest(), model_id=compute_model_id(b"h", b"t")).to_dict()
    data["verification"]["max_abs_diff"] = float("inf")
    with pytest.raises(BundleError, match=r"^m.json: verification.max_abs_diff: must be a finite number"):
        Manifest.from_dict(data, origin="m.json")


def test_manifest_dict_round_trip_and_schema_origin():
    manifest = dataclasses.replace(_manifest(), model_id=compute_model_id(b"h", b"t"))
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    bad = manifest.to_dict()
    bad["input"]["std"] = [0.2, 0.0, 0.2]
    with pytest.raises(BundleError, match=r"^somewhere.json: input.std\[1\]"):
        Manifest.from_dict(bad, origin="somewhere.json")

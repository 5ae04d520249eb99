"""export records class names and preprocessing in the ONNX file; split takes them as defaults, options win."""

from __future__ import annotations

import json
import sys

import onnx
import pytest
import torch
from torch import nn

from splitcomp_core.bundle import load_bundle
from splitcomp_tools import export, split
from splitcomp_tools.model.export import export_torch_module
from splitcomp_tools.model.metadata import (
    LABELS_KEY,
    PREPROCESSING_KEY,
    metadata_props,
    recorded,
    recorded_labels,
    recorded_preprocessing,
)
from splitcomp_tools.model.split import IMAGENET_MEAN, split_model

LABELS = ["left", "middle", "right"]
RECORDED = {"mean": (0.25, 0.5, 0.75), "std": (0.5, 0.25, 0.125), "bgr": True, "crop_resize": 40}


def _module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny model exported with metadata, and its first ReLU output (a valid cut)."""
    path = tmp_path_factory.mktemp("meta") / "model.onnx"
    export_torch_module(_module(), torch.randn(1, 3, 32, 32), path, metadata=metadata_props("tiny", LABELS, RECORDED))
    cut = next(n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type == "Relu")
    return path, cut


def test_export_records_labels_and_preprocessing(exported):
    model = onnx.load(str(exported[0]))
    assert recorded(model)["splitcomp.source"] == "tiny"
    assert recorded_labels(model) == LABELS
    assert recorded_preprocessing(model) == RECORDED


def test_split_uses_what_the_model_recorded(exported, tmp_path, capsys):
    path, cut = exported
    assert split.main([str(path), "--at", cut, "--out", str(tmp_path / "b")]) == 0
    assert "3 class names" in capsys.readouterr().out
    bundle = load_bundle(tmp_path / "b")
    spec = bundle.manifest.input
    assert bundle.labels == LABELS
    assert (spec.mean, spec.std, spec.color_order) == (list(RECORDED["mean"]), list(RECORDED["std"]), "BGR")
    assert (spec.resize, spec.resize_size) == ("center_crop", 40)
    # a new bundle compresses its codes: P-frames (keyframe_interval) only pay through a compressing codec
    assert (bundle.manifest.quantization.codec, bundle.manifest.quantization.bits) == ("zstd", 4)


def test_options_given_to_split_win_over_the_recorded_ones(exported, tmp_path):
    path, cut = exported
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(["a", "b", "c"]))
    argv = [str(path), "--at", cut, "--out", str(tmp_path / "b"), "--mean", "0.1,0.2,0.3", "--labels", str(labels)]
    assert split.main(argv) == 0
    bundle = load_bundle(tmp_path / "b")
    spec = bundle.manifest.input
    assert bundle.labels == ["a", "b", "c"]
    assert spec.mean == [0.1, 0.2, 0.3] and spec.std == list(RECORDED["std"])  # only the mean was given
    assert (spec.color_order, spec.resize_size) == ("BGR", 40)
    python = split_model(path, [cut], tmp_path / "c", preprocessing={"crop_resize": None})[0]
    assert python.manifest.input.resize == "stretch" and python.manifest.input.color_order == "BGR"


def test_a_model_without_metadata_keeps_the_old_defaults(tmp_path):
    path = tmp_path / "plain.onnx"
    export_torch_module(_module(), torch.randn(1, 3, 32, 32), path)
    cut = next(n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type == "Relu")
    bundle, _ = split_model(path, [cut], tmp_path / "b")
    spec = bundle.manifest.input
    assert bundle.labels is None
    assert (spec.mean, spec.color_order, spec.resize) == (list(IMAGENET_MEAN), "RGB", "stretch")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (LABELS_KEY, "not json", "not valid JSON"),
        (PREPROCESSING_KEY, '{"mean": [1, 2]}', "3 finite numbers"),
        (PREPROCESSING_KEY, '{"gamma": 2}', "unknown fields"),
        (PREPROCESSING_KEY, "[1, 2]", "not a JSON object"),
    ],
)
def test_broken_metadata_is_refused_with_one_line(exported, tmp_path, capsys, key, value, message):
    model = onnx.load(str(exported[0]))
    onnx.helper.set_model_props(model, {**recorded(model), key: value})
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    assert split.main([str(broken), "--at", exported[1], "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_a_missing_model_package_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # as if it were not installed
    assert export.main(["efficientnet_lite0", "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "efficientnet-lite-pytorch" in err and "requirements/tools.txt" in err
    assert not (tmp_path / "m.onnx").exists()


def test_other_sources_still_need_an_input_shape(tmp_path, capsys):
    assert export.main(["torchvision:resnet18", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "--input-shape is required" in capsys.readouterr().err

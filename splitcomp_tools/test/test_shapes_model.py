"""ShapesResNet builds as specified, and the SHIPPED model.onnx is real: right interface, small, accurate."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from splitcomp_tools.frames.shapes import CLASS_NAMES, ShapeGenerator
from splitcomp_tools.shapes.model import INPUT_NAME, MEAN, OUTPUT_NAME, STD, BasicBlock, ShapesResNet, normalize

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "shapes"
MAX_MODEL_BYTES = 5 * 1024 * 1024


def test_forward_gives_one_logit_per_class():
    model = ShapesResNet(len(CLASS_NAMES)).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 128, 128))
    assert logits.shape == (2, len(CLASS_NAMES))


def test_architecture_is_resnet_style():
    model = ShapesResNet(len(CLASS_NAMES))
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(model.stage_names) >= 4 and len(blocks) >= 4
    assert any(isinstance(b.shortcut, nn.Identity) for b in blocks), "needs an identity shortcut"
    assert any(not isinstance(b.shortcut, nn.Identity) for b in blocks), "needs a projection shortcut"
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d) and isinstance(model.fc, nn.Linear)


def test_stages_halve_resolution_and_grow_channels():
    model = ShapesResNet(len(CLASS_NAMES)).eval()
    shapes = []
    x = torch.zeros(1, 3, 128, 128)
    with torch.no_grad():
        x = model.stem(x)
        for name in model.stage_names:
            x = getattr(model, name)(x)
            shapes.append(tuple(x.shape))
    assert shapes == [(1, 16, 32, 32), (1, 32, 16, 16), (1, 96, 8, 8), (1, 192, 4, 4)]


def test_bad_constructor_arguments_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        ShapesResNet(1)
    with pytest.raises(ValueError, match="at least 4 stage widths"):
        ShapesResNet(10, widths=(8, 16, 32))


def test_normalize_applies_imagenet_mean_and_std_channelwise():
    images = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    images[..., 0] = 255
    out = normalize(images)
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = [(1.0 - MEAN[0]) / STD[0], -MEAN[1] / STD[1], -MEAN[2] / STD[2]]
    np.testing.assert_allclose(out[0, :, 0, 0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="N x H x W x 3 uint8"):
        normalize(np.zeros((2, 2, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def shipped_session():
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(SHIPPED / "model.onnx"), options, providers=["CPUExecutionProvider"])


def test_shipped_model_is_small():
    assert (SHIPPED / "model.onnx").stat().st_size <= MAX_MODEL_BYTES


def test_shipped_model_has_the_declared_interface(shipped_session):
    (model_input,) = shipped_session.get_inputs()
    (model_output,) = shipped_session.get_outputs()
    assert model_input.name == INPUT_NAME and model_input.type == "tensor(float)"
    assert model_input.shape[1:] == [3, 128, 128]
    assert isinstance(model_input.shape[0], str), "batch dimension should be dynamic"
    assert model_output.name == OUTPUT_NAME
    assert model_output.shape[1:] == [len(CLASS_NAMES)]


def test_shipped_labels_match_the_generator_classes():
    assert json.loads((SHIPPED / "labels.json").read_text()) == list(CLASS_NAMES)


def test_shipped_training_record_names_its_settings():
    record = json.loads((SHIPPED / "training.json").read_text())
    for key in ("seed", "epochs", "train_seconds", "heldout_accuracy_onnxruntime", "versions"):
        assert key in record
    assert record["heldout_accuracy_onnxruntime"] >= 0.95


def test_shipped_model_classifies_fresh_heldout_images(shipped_session):
    # A seed used neither for training nor for the recorded held-out check.
    images, labels = ShapeGenerator(seed=20240611).batch(240)
    predictions = np.concatenate(
        [
            shipped_session.run([OUTPUT_NAME], {INPUT_NAME: normalize(images[i : i + 60])})[0].argmax(1)
            for i in range(0, len(images), 60)
        ]
    )
    accuracy = float((predictions == labels).mean())
    assert accuracy >= 0.90, f"held-out accuracy {accuracy:.3f}"
    # Every class is recognised, not just the easy ones.
    per_class = [float((predictions[labels == c] == c).mean()) for c in range(len(CLASS_NAMES))]
    assert min(per_class) >= 0.6, dict(zip(CLASS_NAMES, per_class))


def test_shipped_model_classifies_camera_sized_frames_through_the_project_preprocessing(shipped_session):
    # What the demo does: image_source publishes 640x480 generated frames, the head node
    # preprocesses them per the bundle's input spec (centre crop to the model's square input).
    from splitcomp_core.bundle import InputSpec
    from splitcomp_core.preprocess import Preprocessor

    preprocess = Preprocessor(
        InputSpec(
            name=INPUT_NAME,
            shape=[1, 3, 128, 128],
            height=128,
            width=128,
            color_order="RGB",
            mean=list(MEAN),
            std=list(STD),
            resize="center_crop",
            resize_size=128,
        )
    )
    frames, labels = ShapeGenerator(seed=4242, size=(640, 480)).batch(96)
    inputs = np.concatenate([preprocess(frame) for frame in frames])
    predictions = shipped_session.run([OUTPUT_NAME], {INPUT_NAME: inputs})[0].argmax(1)
    accuracy = float((predictions == labels).mean())
    assert accuracy >= 0.90, f"accuracy on 640x480 frames {accuracy:.3f}"

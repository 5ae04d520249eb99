"""The detection decoders against hand-made outputs with known boxes, and detection bundles in ONNX Runtime."""

import dataclasses
import json

import numpy as np
import pytest
from tiny_models import TINY_DETECTION_OUTPUTS, tiny_detection_manifest, tiny_detection_tail, tiny_head

from splitcomp_core.bundle import load_bundle, write_bundle
from splitcomp_core.detection import Decoder, DecoderSettings, DetectionRejected, iou_matrix, nms
from splitcomp_core.detection.centerface import MAX_CANDIDATES, peaks
from splitcomp_core.errors import BundleError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import FeaturesRejected, TailPipeline

ROLES = {"heatmap": "h", "scale": "s", "offset": "o", "landmarks": "l"}
SETTINGS = DecoderSettings("centerface", ROLES, threshold=0.5, stride=4, nms_iou=0.3, max_detections=100)


def outputs(grid=(12, 16)):
    """All-background CenterFace outputs for an input of grid*4 pixels (the heatmap at 0.01)."""
    h, w = grid
    return {
        "h": np.full((1, 1, h, w), 0.01, np.float32),
        "s": np.zeros((1, 2, h, w), np.float32),
        "o": np.zeros((1, 2, h, w), np.float32),
        "l": np.zeros((1, 10, h, w), np.float32),
    }


def put_face(out, row, col, score, box_h, box_w, offset=(0.0, 0.0)):
    """A face centred at cell (row, col) + offset, of box_h x box_w input pixels, its landmarks at the box corner."""
    out["h"][0, 0, row, col] = score
    out["s"][0, :, row, col] = np.log([box_h / 4, box_w / 4])
    out["o"][0, :, row, col] = offset


def boxes_of(result):
    return [(d.x, d.y, d.width, d.height) for d in result.detections]


def test_two_faces_decode_to_their_boxes_best_first():
    out = outputs()
    put_face(out, 3, 5, 0.9, 16, 12)  # centre ((5 + 0.5) * 4, (3 + 0.5) * 4) = (22, 14)
    put_face(out, 8, 12, 0.95, 8, 8, offset=(0.25, -0.5))  # centre (48, 35)
    result = Decoder(SETTINGS, (64, 48))(out, (64, 48))
    assert [round(d.score, 2) for d in result.detections] == [0.95, 0.9]
    np.testing.assert_allclose(boxes_of(result), [(44, 31, 8, 8), (16, 6, 12, 16)], atol=1e-4)
    assert result.detections[0].label == "0" and result.detections[0].class_id == 0
    assert len(result.detections[0].keypoints) == 10
    np.testing.assert_allclose(result.detections[1].keypoints, [16, 6] * 5, atol=1e-4)  # landmarks (0, 0): the corner


def test_boxes_map_to_the_camera_frame_by_stretch_and_labels_name_the_class():
    out = outputs()
    put_face(out, 3, 5, 0.9, 16, 12)
    (face,) = Decoder(SETTINGS, (64, 48), ["face"])(out, (640, 240)).detections
    np.testing.assert_allclose((face.x, face.y, face.width, face.height), (160, 30, 120, 80), atol=1e-3)
    np.testing.assert_allclose(face.keypoints[:2], (160, 30), atol=1e-3)
    assert face.label == "face"


def test_a_peak_is_the_maximum_of_its_3x3_neighbourhood_and_above_the_threshold():
    heat = np.zeros((6, 6), np.float32)
    heat[2, 2], heat[2, 3], heat[4, 5], heat[0, 0] = 0.9, 0.8, 0.7, 0.4
    rows, cols = peaks(heat, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(2, 2), (4, 5)]


def test_overlapping_boxes_are_suppressed_and_distant_ones_kept():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.3, 100).tolist() == [1, 2]
    assert nms(boxes, np.array([0.8, 0.9, 0.7]), 0.3, 1).tolist() == [1]
    np.testing.assert_allclose(iou_matrix(boxes[:1], boxes[1:])[0], [81 / 119, 0.0])


def test_boxes_are_clipped_to_the_frame_and_a_box_left_without_area_is_dropped_and_counted():
    out = outputs()
    put_face(out, 0, 0, 0.9, 40, 40)  # centre (2, 2), reaches from -18 to 22
    out["h"][0, 0, 6, 8] = 0.8
    out["s"][0, :, 6, 8] = -30  # exp() of a wild scale: a box of no size
    result = Decoder(SETTINGS, (64, 48))(out, (64, 48))
    np.testing.assert_allclose(boxes_of(result), [(0, 0, 22, 22)], atol=1e-4)
    assert result.dropped_zero_size == 1


def test_thousands_of_peaks_publish_at_most_max_detections():
    out = outputs((96, 128))
    out["h"][0, 0, ::2, ::2] = 0.9  # 3072 isolated peaks, none overlapping (4x4 boxes on an 8-pixel grid)
    out["s"][:] = 0.0
    settings = dataclasses.replace(SETTINGS, max_detections=100)
    result = Decoder(settings, (512, 384))(out, (512, 384))
    assert len(result.detections) == 100
    assert np.count_nonzero(out["h"] > 0.5) > MAX_CANDIDATES


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_an_output_is_a_counted_reject(bad):
    out = outputs()
    out["h"][0, 0, 1, 1] = bad
    with pytest.raises(DetectionRejected) as caught:
        Decoder(SETTINGS, (64, 48))(out, (64, 48))
    assert caught.value.reason == "non_finite"


@pytest.mark.parametrize("size", [(0, 480), (640, 0), (70000, 480)])
def test_a_camera_size_the_tail_cannot_map_to_is_a_counted_reject(size):
    with pytest.raises(DetectionRejected) as caught:
        Decoder(SETTINGS, (64, 48))(outputs(), size)
    assert caught.value.reason == "image_size"


@pytest.fixture
def detection_bundle(tiny_detection_bundle):
    return tiny_detection_bundle


def test_a_detection_bundle_round_trips_its_task_and_a_classification_manifest_stays_as_it_was(detection_bundle):
    data = json.loads((detection_bundle.path / "manifest.json").read_text())
    assert data["task"] == "detection" and data["detection"]["decoder"] == "centerface"
    again = load_bundle(detection_bundle.path)
    assert again.manifest.detection == detection_bundle.manifest.detection and again.labels == ["face"]


def test_an_old_manifest_without_a_task_is_a_classification(tiny_bundle):
    data = json.loads((tiny_bundle.path / "manifest.json").read_text())
    assert "task" not in data and "detection" not in data
    assert tiny_bundle.manifest.task == "classification" and tiny_bundle.manifest.detection is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"decoder": "yolo9000"}, "not a known kind"),
        ({"outputs": {**TINY_DETECTION_OUTPUTS, "landmarks": "missing"}}, "are not outputs of the tail"),
        ({"stride": 8}, "at stride 8"),
    ],
)
def test_an_unknown_decoder_or_outputs_that_do_not_fit_are_refused_in_one_line(tmp_path, change, words):
    with pytest.raises(BundleError, match=words) as caught:
        write_bundle(tmp_path / "det", tiny_head(), tiny_detection_tail(), tiny_detection_manifest(**change), ["face"])
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "det").exists()


def test_landmarks_of_the_wrong_channel_count_are_refused(tmp_path):
    with pytest.raises(BundleError, match=r"landmarks must be \[N, 10"):
        write_bundle(tmp_path / "det", tiny_head(), tiny_detection_tail(8), tiny_detection_manifest(), ["face"])


def test_the_tail_answers_a_detection_bundle_with_boxes_in_camera_pixels(detection_bundle):
    head = HeadPipeline(detection_bundle, EncoderConfig(bits=32), providers=["cpu"])
    tail = TailPipeline(detection_bundle, ["cpu"])
    image = np.zeros((16, 16, 3), np.uint8)
    image[8:12, 4:8] = 255  # a bright patch: a heatmap peak at cell (2, 1)
    result = head(image, "rgb8")
    answer = tail(detection_bundle.manifest.model_id, result.tensors, image_size=(160, 320))
    features, _, _ = head.features(image, "rgb8")
    direct = tail.decoder(tail.session.run(features), (160, 320)) if tail.decoder else None
    assert answer.results == [] and answer.detections and direct is not None
    assert answer.detections == direct.detections
    assert all(d.x >= 0 and d.x + d.width <= 160 and d.y + d.height <= 320 for d in answer.detections)
    assert answer.detections[0].label == "face"
    with pytest.raises(FeaturesRejected) as caught:
        tail(detection_bundle.manifest.model_id, result.tensors)  # no image size: an old head
    assert caught.value.reason == "image_size"

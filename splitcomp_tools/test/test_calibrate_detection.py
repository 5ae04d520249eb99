"""calibrate and plan's rule on a detection bundle: every row carries box agreement (F1, recall of confident boxes
with its Wilson interval, mean IoU), JPEG-95 and H.264 of the same frames beside it, and --target-agreement chooses
by it through the same HeadPipeline/TailPipeline as for classes (a real tiny detector, real ONNX Runtime)."""

import json

import pytest

from splitcomp_core.bundle import load_bundle
from splitcomp_core.head import HeadPipeline
from splitcomp_core.tail import TailPipeline
from splitcomp_tools import calibrate as calibrate_tool
from splitcomp_tools.frames import open_source
from splitcomp_tools.model.box_agreement import DEFAULT_BOX_CONFIDENCE, BoxAgreement, measure_boxes
from splitcomp_tools.model.calibrate import calibrate
from splitcomp_tools.model.video import H264_CAMERA

FRAMES = 50
TARGET = 0.85  # 22 confident boxes can support it


@pytest.fixture(scope="module")
def result(tiny_detection_bundle):
    return calibrate(tiny_detection_bundle.path, "generator", FRAMES, video_codecs=("h264",))


def test_every_row_is_judged_by_box_agreement_at_the_box_confidence(result):
    assert result.confidence == DEFAULT_BOX_CONFIDENCE
    assert all(isinstance(r.stats, BoxAgreement) for r in result.results)
    assert {r.method for r in result.baselines()} >= {"jpeg_full", H264_CAMERA}
    raw = next(r for r in result.results if r.method == "raw" and r.bits == 32)
    assert raw.stats.rate == 1.0 and raw.stats.mean_iou == pytest.approx(1.0)
    clip2 = next(r for r in result.results if r.method == "clip" and r.bits == 2)
    assert clip2.stats.rate < raw.stats.rate  # the seed clip at 2 bits loses boxes
    assert result.confident_frames() >= 22  # confident boxes: what the lower bound is judged on


def test_box_agreement_matches_the_deployed_pipelines(tiny_detection_bundle, result):
    """The table's 8-bit row is what the nodes' head and tail would answer, frame by frame."""
    row = next(r for r in result.results if (r.method, r.bits, r.codec) == ("per_tensor_mse", 8, "zstd"))
    chosen = result.with_default(row)
    bundle = load_bundle(tiny_detection_bundle.path)
    bundle.manifest.quantization = chosen.quantization
    head, tail = HeadPipeline(bundle), TailPipeline(bundle)
    unsplit, split = [], []
    for frame in open_source("generator", seed=0).frames(FRAMES):
        unsplit.append(tail.detections({n: a[None] for n, a in head.features(frame, "rgb8")[0].items()})[0])
        answer = tail(bundle.manifest.model_id, head(frame).tensors, image_size=(16, 16))
        split.append(answer.detections)
    deployed = measure_boxes(unsplit, split)
    counts = ("matched", "reference_boxes", "candidate_boxes", "confident_matched", "confident_boxes")
    assert [getattr(deployed, k) for k in counts] == [getattr(row.stats, k) for k in counts]
    assert deployed.mean_iou == pytest.approx(row.stats.mean_iou)


def test_the_target_chooses_the_cheapest_row_meeting_the_rule_on_boxes(result):
    chosen = result.cheapest(TARGET)
    assert chosen is not None and chosen.codec is not None
    assert chosen.stats.confident_interval()[0] >= TARGET
    assert chosen.stats.rate >= result.floor().rate(chosen.bytes_per_frame)
    cheaper = [r for r in result.meeting(TARGET) if r.bytes_per_frame < chosen.bytes_per_frame]
    assert not cheaper


def test_cli_stores_the_choice_and_prints_box_columns(tiny_detection_bundle, tmp_path, capsys):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_detection_bundle.path, bundle)
    out = tmp_path / "c.json"
    args = [str(bundle), "--images", "generator", "--count", str(FRAMES), "--target-agreement", str(TARGET)]
    assert calibrate_tool.main([*args, "--video-codecs", "none", "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "box F1" in printed and "recall of confident boxes" in printed and "mean IoU" in printed
    data = json.loads(out.read_text())
    assert data["confidence"] == DEFAULT_BOX_CONFIDENCE and "f1" in data["default"]["stats"]
    stored = load_bundle(bundle).manifest.quantization
    assert (stored.bits, stored.codec) == (data["default"]["bits"], data["default"]["codec"])


def test_plans_everything_on_the_robot_extreme_sends_every_decoder_output(tiny_detection_bundle, tmp_path):
    """plan's `output` candidate of a detector: the head is the whole model, every output the decoder reads
    crosses, and the bundle loads and answers boxes like the split one."""
    import onnx
    from onnx import compose

    from splitcomp_tools.model.candidates import ROBOT_ONLY, _extreme_bundle

    head = onnx.load(str(tiny_detection_bundle.head_path))
    tail = onnx.load(str(tiny_detection_bundle.tail_path))
    full = compose.merge_models(head, tail, io_map=[("feat", "feat")])
    onnx.save(full, tmp_path / "full.onnx")
    extreme = _extreme_bundle(tmp_path / "full.onnx", tiny_detection_bundle, ROBOT_ONLY, tmp_path / "out", False)
    assert [t.name for t in extreme.manifest.cut] == list(tiny_detection_bundle.manifest.detection.outputs.values())
    frame = next(iter(open_source("generator", seed=3).frames(1)))
    ours = HeadPipeline(extreme)
    boxes = TailPipeline(extreme)(extreme.manifest.model_id, ours(frame).tensors, image_size=(16, 16)).detections
    split = HeadPipeline(tiny_detection_bundle)
    tail_split = TailPipeline(tiny_detection_bundle)
    model_id = tiny_detection_bundle.manifest.model_id
    assert boxes == tail_split(model_id, split(frame).tensors, image_size=(16, 16)).detections

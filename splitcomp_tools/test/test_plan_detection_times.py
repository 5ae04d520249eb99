"""plan times a detection bundle's head and tail as the nodes run them: the tail gets the camera frame's size (a
detector maps its boxes to it), so timing a detector's candidates answers instead of rejecting every frame."""

from splitcomp_tools.model.candidates import Candidate
from splitcomp_tools.model.devices import WARMUP_FRAMES, measure_times


def test_a_detectors_candidate_is_timed_on_real_frames(tiny_detection_bundle):
    cut = tiny_detection_bundle.manifest.cut[0]
    candidate = Candidate("c", [cut.name], 0.5, 1, 0.5, bundle=tiny_detection_bundle.path)
    times, provider = measure_times([candidate], "generator", count=3, rate_hz=0)
    assert provider == "CPUExecutionProvider" and WARMUP_FRAMES > 0
    measured = times["c"]
    assert 0 < measured["tail_ms"] <= measured["tail_total_ms"]  # the decoder's time on top of ONNX Runtime's
    assert 0 < measured["head_ms"] <= measured["head_total_ms"]

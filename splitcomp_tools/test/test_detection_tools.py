"""Tools on a detection bundle: plan times its head and tail as the nodes run them (the tail gets the camera frame's
size, which a detector maps its boxes to), and classify, which prints classes, refuses it in one line."""

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


def test_classify_refuses_a_detector_in_one_line(tiny_detection_bundle, capsys):
    from splitcomp_tools import classify

    assert classify.main([str(tiny_detection_bundle.path), "--frames", "generator", "--count", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "detects (its tail answers boxes)" in err and err.count("\n") == 1

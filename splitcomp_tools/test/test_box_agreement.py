"""Box agreement on constructed cases: a missed box, an extra box, a shifted box, two boxes swapped."""

import pytest

from splitcomp_core.detection import Detection
from splitcomp_tools.model.agreement import Floor, meets, wilson_interval
from splitcomp_tools.model.box_agreement import match, measure_boxes, xyxy


def box(x, y, w=20.0, h=20.0, score=0.9):
    return Detection(0, "face", score, x, y, w, h)


A, B = box(10, 10), box(100, 50, score=0.6)


def test_identical_detections_agree_fully():
    result = measure_boxes([[A, B]], [[A, B]])
    assert (result.rate, result.confident_rate, result.mean_iou) == (1.0, 1.0, 1.0)
    assert (result.confident_matched, result.confident_boxes) == (1, 1)  # B is below the 0.8 confidence


def test_a_missed_box_lowers_f1_and_the_confident_recall():
    result = measure_boxes([[A, B]], [[B]])
    assert result.rate == pytest.approx(2 * 1 / 3)
    assert result.confident_rate == 0.0 and result.confident_interval() == wilson_interval(0, 1)


def test_an_extra_box_lowers_f1_but_not_the_recall():
    result = measure_boxes([[A]], [[A, box(300, 300)]])
    assert result.rate == pytest.approx(2 / 3)
    assert result.confident_rate == 1.0 and result.mean_iou == 1.0


def test_a_shifted_box_matches_at_iou_half_or_more_else_counts_as_missed_and_extra():
    slightly = measure_boxes([[A]], [[box(12, 10)]])  # IoU 360 / 440
    assert slightly.rate == 1.0 and slightly.mean_iou == pytest.approx(360 / 440)
    far = measure_boxes([[A]], [[box(20, 10)]])  # IoU 200 / 600
    assert far.rate == 0.0 and far.confident_rate == 0.0 and far.mean_iou == 0.0


def test_two_boxes_swapped_in_order_still_match_one_to_one():
    result = measure_boxes([[A, B]], [[B, A]])
    assert result.rate == 1.0 and result.mean_iou == 1.0
    assert sorted(match(xyxy([A, B]), xyxy([B, A]))) == [(0, 1, 1.0), (1, 0, 1.0)]


def test_one_candidate_cannot_match_two_reference_boxes():
    twins = [box(10, 10), box(12, 10)]
    assert len(match(xyxy(twins), xyxy([box(11, 10)]))) == 1


def test_the_shared_rule_reads_box_agreement_like_class_agreement():
    many = 200
    perfect = measure_boxes([[A]] * many, [[A]] * many)
    worse = measure_boxes([[A]] * many, [[A, box(300, 300)]] * many)
    assert meets(perfect, 1000.0, Floor(worse), 0.95) and not meets(worse, 1000.0, Floor(perfect), 0.95)

"""The overlay drawing: text lands in the band, nothing outside the band changes, sizes follow the image."""

import cv2
import numpy as np
import pytest

from splitcomp_core.errors import ImageFormatError
from splitcomp_tools.draw.annotate import MAX_LABEL_CHARS, annotate, band_rect, drawable, result_lines
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.overlay import main as overlay

SCORES = [("horizontal_stripes", 0.9714), ("circle", 0.0203), ("ring", 0.0049), ("cross", 0.0011)]
LINES = result_lines(SCORES, latency_ms=23.43, feature_bytes=1568, fps=12.34)
TEXT_LEVEL = 150  # under the band nothing is brighter than 0.35 * 255 = 89, so brighter pixels are text


def band_mask(shape, n_lines):
    x0, y0, x1, y1 = band_rect(shape, n_lines)
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    return mask


def runs(flags):
    """Number of separate runs of True in a 1-D boolean array."""
    flags = np.concatenate([[False], flags, [False]]).astype(np.int8)
    return int((np.diff(flags) == 1).sum())


@pytest.mark.parametrize("width,height", [(640, 480), (160, 120)])
def test_text_is_drawn_in_the_band_and_nothing_else_changes(width, height):
    frame = GeneratorSource(width, height, seed=3).read()
    out = annotate(frame, LINES)
    x0, y0, x1, y1 = band_rect(frame.shape, len(LINES))
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    inside = band_mask(frame.shape, len(LINES))
    assert np.array_equal(out[~inside], frame[~inside])
    changed = np.any(out != frame, axis=2)[inside]
    assert changed.mean() > 0.9, "the band must darken the frame under it"
    text = out[y0:y1, x0:x1].min(axis=2) >= TEXT_LEVEL
    assert text.sum() > 0.02 * text.size
    assert runs(text.any(axis=1)) == len(LINES), "each line must be a separate row of text"
    rows, cols = np.nonzero(text)
    assert cols.max() < x1 - x0 - 1 and rows.max() < y1 - y0 - 1, "the text must fit inside the band"


def test_band_is_sized_by_the_image_height():
    small, large = band_rect((480, 640, 3), 5), band_rect((1080, 1920, 3), 5)
    ratio_h, ratio_w = (large[3] - large[1]) / (small[3] - small[1]), (large[2] - large[0]) / (small[2] - small[0])
    assert 1080 / 480 * 0.85 < ratio_h < 1080 / 480 * 1.15
    assert 1080 / 480 * 0.85 < ratio_w < 1080 / 480 * 1.15
    assert small[3] < 480 / 2 and small[2] < 640 / 2, "the band must leave most of the picture visible"
    assert band_rect((480, 640, 3), 6)[3] > small[3]
    assert band_rect((480, 640, 3), 0) == (0, 0, 0, 0)


def test_band_is_clipped_to_a_tiny_image():
    frame = np.full((40, 50, 3), 120, np.uint8)
    out = annotate(frame, LINES)
    assert band_rect(frame.shape, len(LINES)) == (0, 0, 50, 40)
    assert (out.max(axis=2) >= TEXT_LEVEL).any()


def test_annotate_returns_a_copy_and_works_in_bgr():
    rgb = GeneratorSource(320, 240, seed=4).read()
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    before = bgr.copy()
    out = annotate(bgr, LINES)
    assert np.array_equal(bgr, before)
    assert np.array_equal(out[:, :, ::-1], annotate(rgb, LINES)), "white text and a grey band are colour-order free"
    assert np.array_equal(annotate(rgb, []), rgb)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((48, 64), np.uint8),
        np.zeros((48, 64, 4), np.uint8),
        np.zeros((48, 64, 3), np.float32),
        [[0, 0, 0]],
    ],
)
def test_annotate_refuses_what_it_cannot_draw_on(bad):
    with pytest.raises(ImageFormatError, match="HxWx3 uint8"):
        annotate(bad, LINES)


def test_drawable_keeps_rgb_and_bgr_and_converts_the_rest_to_rgb():
    rgb = GeneratorSource(64, 48, seed=5).read()
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    assert drawable(rgb, "rgb8")[0] is rgb and drawable(rgb, "rgb8")[1] == "rgb8"
    assert drawable(bgr, "bgr8")[0] is bgr and drawable(bgr, "bgr8")[1] == "bgr8"
    bgra = np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)])
    image, encoding = drawable(bgra, "bgra8")
    assert encoding == "rgb8" and np.array_equal(image, rgb)
    gray = rgb[:, :, 1].copy()
    image, encoding = drawable(gray, "mono8")
    assert encoding == "rgb8" and image.shape == (48, 64, 3) and np.array_equal(image[:, :, 2], gray)
    with pytest.raises(ImageFormatError, match="16UC1"):
        drawable(np.zeros((4, 4), np.uint16), "16UC1")


def test_result_lines():
    assert LINES == [
        "1. horizontal_stripes 97.1%",
        "2. circle 2.0%",
        "3. ring 0.5%",
        "latency 23.4 ms",
        "1568 B/frame  12.3 fps",
    ]
    assert result_lines(SCORES[:1], 5.0, 10, 0.0, top_n=3) == [
        "1. horizontal_stripes 97.1%",
        "latency 5.0 ms",
        "10 B/frame  0.0 fps",
    ]
    long_label = "great white shark, white shark, man-eater"
    first = result_lines([(long_label, 0.5)], 1.0, 1, 1.0)[0]
    label = first[len("1. ") : -len(" 50.0%")]
    assert len(label) == MAX_LABEL_CHARS and label.endswith("...") and long_label.startswith(label[:-3])


def test_overlay_example_png(tmp_path, capsys):
    path = tmp_path / "overlay.png"
    assert overlay(["overlay", "--example", str(path)]) == 0
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    frame = GeneratorSource(640, 480, seed=0).read()
    assert image.shape == frame.shape
    outside = ~band_mask(frame.shape, 5)
    assert np.array_equal(image[outside], frame[outside])
    assert not np.array_equal(image, frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.png"]


def test_overlay_example_refuses_bad_paths(tmp_path, capsys):
    assert overlay(["overlay", "--example", str(tmp_path / "overlay.jpg")]) == 2
    assert overlay(["overlay", f"--example={tmp_path / 'missing' / 'overlay.png'}"]) == 2
    err = capsys.readouterr().err
    assert "ending in .png" in err and "is not a directory" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_boxes_and_landmarks_are_drawn_where_they_are_and_nowhere_else():
    from splitcomp_tools.draw.annotate import BOX_COLOUR, LANDMARK_COLOUR, Box, draw_boxes

    frame = np.full((480, 640, 3), 40, np.uint8)
    box = Box(100.0, 80.0, 120.0, 160.0, (130.0, 120.0, 190.0, 120.0, 160.0, 160.0, 140.0, 200.0, 180.0, 200.0))
    out = draw_boxes(frame, [box])
    assert np.array_equal(frame, np.full((480, 640, 3), 40, np.uint8))  # a copy
    green = np.all(out == BOX_COLOUR, axis=2)
    assert green[80, 100:220].all() and green[239, 100:220].all()  # top and bottom edges
    assert green[80:240, 100].all() and green[80:240, 219].all()  # left and right edges
    assert not green[120:200, 120:200].any()  # the inside is left as it was, but for the landmarks
    magenta = np.all(out == LANDMARK_COLOUR, axis=2)
    for x, y in zip(box.keypoints[0::2], box.keypoints[1::2]):
        assert magenta[int(y), int(x)]
    changed = np.any(out != frame, axis=2)
    assert (
        not changed[:70].any() and not changed[250:].any() and not changed[:, :90].any() and not changed[:, 230:].any()
    )

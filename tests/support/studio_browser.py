"""The studio's page in a real browser: Debian's chromium driven by Playwright, for the browser test and the README.

Playwright's own browser download is not reachable here, so it drives the system's chromium
(`scripts/setup.sh` installs it; SPLITCOMP_CHROMIUM names another binary). The flow is what a
new user does: upload the toy model, click a cut in the table, split, calibrate, test an image.

    python tests/support/studio_browser.py docs/studio.png   # the README's screenshot (starts its own studio)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

CHROMIUM = os.environ.get("SPLITCOMP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_CUT = "/stage2/block1/relu/Relu_output_0"  # where `make demo` splits (model.cut_choice.choose_cut)
TIMEOUT_MS = 60_000


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}: install it with `sudo apt-get install chromium` (scripts/setup.sh does as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: run `make setup` (requirements/test.txt pins it)"
    return None


@contextlib.contextmanager
def studio_server(workspace: Path, *args: str) -> Iterator[str]:
    """`python -m splitcomp_tools.studio` on a free port; yields the page's address, stops it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "splitcomp_tools.studio", "--port", "0", "--workspace", str(workspace), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"http://\S+/", first)
        if not match:
            rest = process.stdout.read() if process.poll() is not None else ""
            raise RuntimeError(f"the studio did not start: {first}{rest}")
        yield match[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def browser_page(profile: Path, width: int = 1440, height: int = 900) -> Iterator:
    """A page of a fresh headless chromium (its own profile directory, no network but the studio)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            context.close()


def run_flow(
    page,
    url: str,
    model: Path,
    images: Sequence[Path],
    labels: Path | None = None,
    cut: str = DEMO_CUT,
    calibrate_frames: int = 0,
) -> dict:
    """Upload `model`, click `cut` in the table, split (with a `labels` file), (calibrate,) classify `images`.

    Returns what the page then shows, and which model it had selected when it opened.
    """
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#model-select option", state="attached")
    opened_on = page.input_value("#model-select")
    page.set_input_files("#model-file", str(model))
    page.click("#model-upload")
    page.wait_for_selector(f'#cut-table tbody tr[data-tensors="{cut}"]')
    page.click(f'#cut-table tbody tr[data-tensors="{cut}"]')
    page.wait_for_selector(f'#cut-table tbody tr.selected[data-tensors="{cut}"]')
    if labels is not None:
        page.select_option("#labels-source", "file")
        page.set_input_files("#labels-file", str(labels))
    page.click("#split-run")
    page.wait_for_function("document.querySelector('#split-result').textContent.includes('verified')")
    if calibrate_frames:
        page.fill("#calibrate-count", str(calibrate_frames))
        page.click("#calibrate-run")
        page.wait_for_selector("#calibrate-result:not([hidden])")
    page.set_input_files("#classify-files", [str(p) for p in images])
    page.click("#classify-run")
    page.wait_for_function(f"document.querySelectorAll('.result-card').length === {len(images)}")
    page.wait_for_function(
        "[...document.querySelectorAll('.result-card img')].every((i) => i.complete && i.naturalWidth)"
    )
    cards = []
    for card in page.query_selector_all(".result-card"):
        tables = card.query_selector_all(".side-by-side table")
        cards.append(
            {
                "image": card.query_selector("h3").inner_text(),
                "split_top1": tables[0].query_selector_all("td")[0].inner_text(),
                "unsplit_top1": tables[1].query_selector_all("td")[0].inner_text(),
                "wire": card.query_selector("li.wire").inner_text(),
                "overlay_width": card.query_selector("img").evaluate("(i) => i.naturalWidth"),
            }
        )
    return {
        "opened_on": opened_on,
        "selected_cut": page.inner_text("#selected-cut"),
        "split_result": page.inner_text("#split-result"),
        "error": page.inner_text("#error") if page.is_visible("#error") else "",
        "page_errors": errors,
        "cards": cards,
    }


def _screenshot(out: Path) -> None:
    """The README's picture: a studio of its own, the toy model split and calibrated, one generated frame tested."""
    from splitcomp_tools.demo.models import DEMO_LABELS, DEMO_MODEL
    from splitcomp_tools.draw.annotate import write_png
    from splitcomp_tools.frames.generator import GeneratorSource

    reason = browser_missing()
    if reason:
        raise SystemExit(f"error: {reason}")
    with tempfile.TemporaryDirectory(prefix="studio-shot-") as tmp:
        root = Path(tmp)
        frame = root / "camera_frame.png"
        write_png(frame, GeneratorSource(640, 480, seed=3).read()[:, :, ::-1].copy())
        model = root / "shapes_demo.onnx"
        shutil.copy(DEMO_MODEL, model)
        with studio_server(root / "workspace") as url, browser_page(root / "profile", 1440, 1000) as page:
            seen = run_flow(page, url, model, [frame], labels=DEMO_LABELS, calibrate_frames=100)
            if seen["error"] or seen["page_errors"]:
                raise SystemExit(f"error: the page showed {seen['error'] or seen['page_errors']}")
            page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].endswith(".png"):
        raise SystemExit("usage: python tests/support/studio_browser.py OUT.png")
    _screenshot(Path(sys.argv[1]))

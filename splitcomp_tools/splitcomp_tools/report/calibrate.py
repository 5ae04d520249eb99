"""calibrate's results for people: the comparison table, the chosen default in one line, a plot, the JSON."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from matplotlib.figure import Figure

from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.entropy import ENTROPY_FILE
from splitcomp_tools.cli import format_table as table
from splitcomp_tools.model.agreement import describe_rule, meets
from splitcomp_tools.model.baseline import FULL_FRAME, MODEL_SIZE, baseline_label
from splitcomp_tools.model.calibration import Calibration
from splitcomp_tools.model.encodings import Result
from splitcomp_tools.model.entropy_sizes import ENTROPY_CODEC
from splitcomp_tools.model.video import is_video
from splitcomp_tools.report import agreement


def format_table(calibration: Calibration) -> str:
    """The comparison as text: split computing per method and bits (agreement, bytes per codec), then JPEG."""
    by_key: dict[tuple[str, int | None], dict[str, Result]] = {}
    for r in calibration.results:
        if r.codec is not None:
            by_key.setdefault((r.method, r.bits), {})[r.codec] = r
    codecs = [*CODEC_NAMES, *([ENTROPY_CODEC] if any(r.codec == ENTROPY_CODEC for r in calibration.results) else [])]
    low, high = calibration.clip
    first = next((r.stats for r in calibration.results), None)
    header = ["method", "bits", *agreement.header(first), *(f"{c} B/frame" for c in codecs)]
    rows = [
        [
            f"clip {low:g}..{high:g}" if method == "clip" else method,
            str(bits),
            *agreement.cells(next(iter(row.values())).stats),
            *(f"{row[c].bytes_per_frame:,.0f}" if c in row else "-" for c in codecs),
        ]
        for (method, bits), row in by_key.items()
    ]
    judged = (
        f"; agreement on {calibration.eval_frames} other frames from {calibration.eval_images}"
        if calibration.eval_images
        else ""
    )
    q = calibration.quantization
    title = (
        f"{calibration.bundle}: ranges from {calibration.frames} frames from {calibration.images}{judged}\n"
        f"stored: {calibration.method} ranges at {calibration.bits} bits; the head's default: bits {q.bits}, "
        f"quantization {q.mode}, codec {q.codec}\n"
        f"{agreement.legend(calibration.confidence, first)}"
    )
    parts = [title, "", table(header, rows), "", baseline_table(calibration.baselines())]
    return "\n".join([*parts, *(["", bottleneck_table(calibration)] if calibration.bottlenecks else [])])


def bottleneck_table(calibration: Calibration) -> str:
    """The learned bottlenecks (bundles `distill` made of this one) on the same frames, with the (a) the rule asks
    of each at its bytes (JPEG-95's or an H.264 row's that sends as much)."""
    floor = calibration.floor()
    header = ["learned bottleneck (distill)", *agreement.HEADER, "(a) needed", "entropy B/frame"]
    rows = [
        [path, *agreement.cells(r.stats), _percent(floor.rate(r.bytes_per_frame)), f"{r.bytes_per_frame:,.0f}"]
        for path, r in calibration.bottlenecks
    ]
    return table(header, rows)


def baseline_table(baselines: Sequence[Result]) -> str:
    """The rows of the frames sent as they are (JPEG, H.264, H.265) as a table, as calibrate and plan print them."""
    stats = next((r.stats for r in baselines), None)
    header = ["what a robot would send instead", "quality/crf", *agreement.header(stats), "B/frame"]
    rows = [
        [baseline_label(r.method), str(r.quality), *agreement.cells(r.stats), f"{r.bytes_per_frame:,.0f}"]
        for r in baselines
    ]
    return table(header, rows)


def describe_bottlenecks(calibration: Calibration, target: float) -> list[str]:
    """Whether each learned bottleneck meets the rule at `target` (it is its own bundle: nothing is stored here)."""
    floor = calibration.floor()
    return [
        f"{path}: {'meets' if r.stats and meets(r.stats, r.bytes_per_frame, floor, target) else 'does not meet'} "
        f"the rule at {target:g} with {r.bytes_per_frame:,.0f} B/frame"
        for path, r in calibration.bottlenecks
    ]


def describe_choice(calibration: Calibration, target: float) -> str:
    """One line: which encoding is the head's default now, and whether it meets the rule at `target`."""
    chosen = calibration.default
    if chosen is None:
        return "head default: as stored (no encoding was chosen from the table)"
    assert chosen.stats is not None
    meets_rule = calibration.cheapest(target) == chosen
    reached = "meets the rule" if meets_rule else "is the best; none meets the rule"
    jpeg = calibration.jpeg_reference()
    floor = calibration.floor().rate(chosen.bytes_per_frame)
    low = chosen.stats.confident_interval()[0]
    entropy = calibration.entropy_row()
    coded = (
        f"; with the written {ENTROPY_FILE}, head parameter codec:=entropy sends {entropy.bytes_per_frame:,.0f} B/frame"
        if entropy is not None
        else ""
    )
    return (
        f"head default: {chosen.method} at {chosen.bits} bits with codec {chosen.codec}, "
        f"{chosen.bytes_per_frame:,.0f} B/frame: confident-frame lower bound {_percent(low)}, all frames "
        f"{_percent(chosen.agreement)} (JPEG-95 of the full frame: {_percent(jpeg.agreement)}; the floor at its bytes "
        f"with H.264: {_percent(floor)}); {reached} "
        f"at {target:g} ({describe_rule(target)}){coded}"
    )


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f} %"


def plot_png(calibration: Calibration, codec: str = "zstd") -> bytes:
    """A PNG of bytes per frame (log scale, split methods with `codec`) against agreement, one series per method."""
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    series: dict[str, list[Result]] = {}
    for r in calibration.results:
        if r.codec in (codec, None):
            series.setdefault(r.method, []).append(r)
    for method, points in series.items():
        points.sort(key=_plot_order)
        label = _plot_label(calibration, method, codec)
        ax.plot([p.bytes_per_frame for p in points], [100.0 * p.agreement for p in points], "o-", label=label)
        for p in points:
            note = (
                f"{'q' if p.method in (MODEL_SIZE, FULL_FRAME) else 'crf'}{p.quality}"
                if p.bits is None
                else f"{p.bits}b"
            )
            ax.annotate(
                note, (p.bytes_per_frame, 100.0 * p.agreement), textcoords="offset points", xytext=(3, 3), fontsize=7
            )
    ax.set_xscale("log")
    ax.set_xlabel("bytes per frame")
    ax.set_ylabel("top-1 agreement with the unsplit model (%)")
    judged = (
        f"; measured on {calibration.eval_frames} from {calibration.eval_images}" if calibration.eval_images else ""
    )
    ax.set_title(f"{calibration.bundle.name}: ranges from {calibration.frames} frames of {calibration.images}{judged}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    return png.getvalue()


def _plot_order(r: Result) -> int:
    """A point's place along its series: its bits, or for JPEG its quality."""
    order = r.bits if r.bits is not None else r.quality
    assert order is not None  # every Result has bits or a quality
    return order


def _plot_label(calibration: Calibration, method: str, codec: str) -> str:
    if method == "clip":
        low, high = calibration.clip
        return f"clip {low:g}..{high:g} ({codec})"
    if method == "raw":
        return f"raw float ({codec})"
    if method in (MODEL_SIZE, FULL_FRAME) or is_video(method):
        return baseline_label(method)
    return f"{method.replace('_', ' ')} ({codec})"


def json_text(calibration: Calibration, written: bool) -> str:
    """What --json writes: the results and the stored ranges."""
    return json.dumps(calibration.to_json(written), indent=2) + "\n"

"""Agreement statistics as every command prints them: (a) all frames, (b) confident frames, (c) top-5 overlap,
with 95 % Wilson intervals, and the note that goes wherever an interval is printed. A detector's box agreement
fills the same three columns: (a) F1, (b) recall on confident boxes, (c) the mean IoU of matched boxes."""

from __future__ import annotations

from splitcomp_tools.model.agreement import DEPENDENCE_NOTE
from splitcomp_tools.model.answers import Stats
from splitcomp_tools.model.box_agreement import MATCH_IOU, BoxAgreement

HEADER = ("top-1 all frames [95 % CI]", "top-1 confident [95 % CI]", "top-5 overlap")
BOX_HEADER = ("box F1", "recall of confident boxes [95 % CI]", "mean IoU")


def header(stats: Stats | None) -> tuple[str, str, str]:
    """The three agreement columns' names for these statistics: class agreement's, or box agreement's."""
    return BOX_HEADER if isinstance(stats, BoxAgreement) else HEADER


def cells(stats: Stats | None) -> list[str]:
    """The three agreement cells of a table row (dashes where nothing was measured)."""
    if stats is None:
        return ["-", "-", "-"]
    if isinstance(stats, BoxAgreement):
        recall = f"{_percent(stats.confident_rate)} [{_range(stats.confident_interval())}]"
        return [_percent(stats.rate), recall if stats.confident_boxes else "-", f"{stats.mean_iou:.3f}"]
    return [
        f"{_percent(stats.rate)} [{_range(stats.interval())}]",
        f"{_percent(stats.confident_rate)} [{_range(stats.confident_interval())}]" if stats.confident_frames else "-",
        f"{stats.top5_overlap:.2f}",
    ]


def legend(confidence: float, stats: Stats | None) -> str:
    """What the columns mean, how many frames (boxes) are confident, and the dependence note."""
    if isinstance(stats, BoxAgreement):
        return (
            f"box agreement with the unsplit model (one-to-one matches at IoU >= {MATCH_IOU:g}); confident = an "
            f"unsplit box's score >= {confidence:g} ({stats.confident_boxes} of {stats.reference_boxes} boxes); "
            f"[..] = 95 % Wilson interval: {DEPENDENCE_NOTE}"
        )
    counted = "" if stats is None else f" ({stats.confident_frames} of {stats.frames} frames)"
    return (
        f"agreement with the unsplit model; confident = its top-1 probability >= {confidence:g}{counted}; "
        f"[..] = 95 % Wilson interval: {DEPENDENCE_NOTE}"
    )


RULE_HELP = (
    "the cheapest encoding whose 95 %% Wilson lower bound of top-1 agreement on confident frames (unsplit top-1 "
    "probability >= --confidence) reaches FRACTION AND whose top-1 agreement on all frames is no worse than the "
    "highest of JPEG-95 of the full frame's and that of every H.264 of the camera frame sending at least as many "
    "bytes (point estimates); too few confident frames for FRACTION (a 0.99 target needs 381) is an "
    "error that names the count needed, never a choice on a point estimate"
)


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f} %"


def _range(interval: tuple[float, float]) -> str:
    low, high = interval
    return f"{100.0 * low:.1f}-{100.0 * high:.1f}"

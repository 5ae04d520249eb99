"""bench video: bytes per frame on real clips, with and without inter-frame coding, at the agreement a robot needs.

For a single-cut bundle: ranges (least-error at each bit width) and entropy tables are fitted on --images
(photos:train); every frame of --eval-images (photos:test and both clips by default) goes through
HeadPipeline and TailPipeline as deployed, at every --bits, --codecs and --keyframe-intervals (0: every frame
a key frame; N: a key frame, then N-1 P-frames under the head's own schedule). Printed: the agreement with
the unsplit model at each bit width ((a) all frames, (b) frames whose unsplit top-1 probability is at least
--confidence, with their count, each with its 95 % Wilson interval, (c) the mean top-5 overlap) next to
JPEG-95 of the camera frame and H.264/H.265 of the camera frame and of the frame at the model's scale (live
settings, CRF 18 to 33, a key frame every --keyframe-intervals value above 0, or every 30); bytes per frame
(median/mean) per source; and the cheapest setting that meets the rule: the lower bound on (b) reaches --target
AND (a) is no worse than the highest of JPEG-95's (a) and that of every H.264 camera-frame row sending at least
as many bytes per frame over the judged frames, as point estimates. A set with too few confident frames cannot support a target: the benchmark says how many it
needs and also chooses at the highest target the set supports. Consecutive video frames are not
independent, so the interval is optimistic on clips. A detection bundle is judged by box agreement instead:
(a) box F1, (b) recall of the unsplit model's boxes scoring at least --confidence (0.8 by default), (c) the
mean IoU of matched boxes (model/box_agreement.py), under the same rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from splitcomp_core.bundle import MODES, load_bundle
from splitcomp_core.codec import CODE_BITS, HEAD_CODECS
from splitcomp_core.files import atomic_write_text
from splitcomp_core.keyframes import MAX_INTERVAL
from splitcomp_tools.cli import ToolParser, UsageError, check_outputs, float_in, format_table, int_in, run_cli
from splitcomp_tools.cli_options import add_bottleneck, add_video_codecs
from splitcomp_tools.model import agreement as ag
from splitcomp_tools.model.box_agreement import DEFAULT_BOX_CONFIDENCE
from splitcomp_tools.model.code_entropy import BOUNDS
from splitcomp_tools.model.video import CAMERA, H264_CAMERA, LABELS
from splitcomp_tools.run.video_measure import VideoBenchOptions, agreement_of, measure_video

FALLBACK_TARGETS = (0.98, 0.97, 0.95, 0.9, 0.8)  # tried in turn when the set cannot support --target


def floor(report: dict) -> ag.Floor:
    """The rule's floor on (a): JPEG-95's and every H.264 camera-frame row's, with its bytes over all judged frames."""
    h264 = tuple(
        (r["bytes"]["all"]["mean"], agreement_of(r["agreement"])) for r in report["video"] if r["method"] == H264_CAMERA
    )
    return ag.Floor(agreement_of(report["jpeg95"]), h264)


def _row_meets(report: dict, row: dict, target: float) -> bool:
    """The rule on one row: its bit width's agreement, its bytes per frame over all judged frames."""
    agreement = agreement_of(report["agreement"][str(row["bits"])])
    return ag.meets(agreement, row["bytes"]["all"]["mean"], floor(report), target)


def choose(report: dict, target: float) -> dict:
    """Which rows (bits, codec, interval) meet the rule at `target`, and per codec and interval the one with the
    fewest bytes on the clips (on all sources when none is a clip); `cheapest` among those."""
    meeting_rows = [row for row in report["rows"] if _row_meets(report, row, target)]
    meeting = sorted({row["bits"] for row in meeting_rows})
    settings: dict[tuple[str, int], dict] = {}
    for row in meeting_rows:
        key = (row["codec"], row["keyframe_interval"])
        if key not in settings or _cost(row) < _cost(settings[key]):
            settings[key] = row
    chosen = sorted(settings.values(), key=_cost)
    return {"target": target, "bits_meeting": meeting, "settings": chosen, "cheapest": chosen[0] if chosen else None}


def _cost(row: dict) -> float:
    return row["bytes"].get("clips", next(iter(row["bytes"].values())))["mean"]


def select(report: dict, target: float) -> list[dict]:
    """The choice at `target`, and where the confident frames cannot support it, also at the highest fallback
    target they can."""
    confident = next(iter(report["agreement"].values()))["confident_frames"]
    supported = [t for t in (target, *FALLBACK_TARGETS) if t <= target and ag.frames_needed(t) <= confident]
    needed = ag.frames_needed(target)
    choices = [{**choose(report, target), "needed": needed, "supported": confident >= needed}]
    if supported and supported[0] != target:
        t = supported[0]
        choices.append({**choose(report, t), "needed": ag.frames_needed(t), "supported": True})
    return choices


def _interval(lo_hi: Sequence[float]) -> str:
    return f"{lo_hi[0]:.3f}–{lo_hi[1]:.3f}"


BOX_HEADER = ["(a) box F1", "(b) confident boxes found", "95% interval", "(c) mean IoU"]


CLASS_HEADER = ["(a) all", "95% interval", "(b) confident", "95% interval", "(c) top-5"]


def _agreement_cells(r: dict, meets: str) -> list[str]:
    if "f1" in r:  # a detector's box agreement (video_measure._agreement_json)
        found = f"{r['confident_matched']}/{r['confident_boxes']}"
        return [f"{r['f1']:.3f}", found, _interval(r["confident_interval"]), f"{r['mean_iou']:.3f}", meets]
    return [
        f"{r['rate']:.3f}",
        _interval(r["interval"]),
        f"{r['confident_agree']}/{r['confident_frames']}",
        _interval(r["confident_interval"]),
        f"{r['top5_overlap']:.3f}",
        meets,
    ]


def format_report(report: dict, choices: Sequence[dict]) -> str:
    target, meeting = choices[0]["target"], choices[0]["bits_meeting"]
    columns = BOX_HEADER if report.get("task") == "detection" else CLASS_HEADER
    header = ["encoding", *columns, f"meets {target:g}"]
    rows = [
        [f"{b} bits", *_agreement_cells(r, "yes" if int(b) in meeting else "no")]
        for b, r in report["agreement"].items()
    ]
    rows.append(["JPEG-95 frame", *_agreement_cells(report["jpeg95"], "")])
    rows += [[_video_name(v), *_agreement_cells(v["agreement"], "")] for v in report["video"]]
    sources = [s["name"] for s in report["sources"]] + (["clips"] if "clips" in report["rows"][0]["bytes"] else [])
    bytes_header = ["bits", "codec", "key frames", *(f"{s} B med/mean" for s in sources), "= intra"]
    bytes_rows = [
        [
            r["bits"],
            r["codec"],
            _keyframes(r["keyframe_interval"]),
            *(_bytes(r["bytes"][s]) for s in sources),
            "yes" if r["identical"] else "NO",
        ]
        for r in report["rows"]
    ]
    bytes_rows.append(["JPEG-95", "", "", *(_bytes(report["jpeg95"]["bytes"][s]) for s in sources), ""])
    bytes_rows += [
        [_video_name(v), "", _keyframes(v["keyframe_interval"]), *(_bytes(v["bytes"][s]) for s in sources), ""]
        for v in report["video"]
    ]
    parts = [format_table(header, rows), "", format_table(bytes_header, bytes_rows, left=(1, 2)), ""]
    parts += _bounds_lines(report)
    parts += _bottleneck_lines(report, target, sources)
    for choice in choices:
        parts += _choice_lines(choice, sources, "boxes" if report.get("task") == "detection" else "frames")
    parts.append(_footer(report))
    return "\n".join(parts)


def _bottleneck_lines(report: dict, target: float, sources: Sequence[str]) -> list[str]:
    """Each learned bottleneck (distill) on the same frames, intra and with P-frames, judged by the same rule."""
    rows = []
    for learned in report.get("bottlenecks", []):
        for r in learned["rows"]:
            meets = ag.meets(agreement_of(r["agreement"]), r["bytes"]["all"]["mean"], floor(report), target)
            rows.append(
                [
                    learned["bundle"],
                    _keyframes(r["keyframe_interval"]),
                    *_agreement_cells(r["agreement"], "yes" if meets else "no"),
                    *(_bytes(r["bytes"][s]) for s in sources),
                ]
            )
    if not rows:
        return []
    header = ["learned bottleneck (distill)", "key frames", "(a) all", "95% interval", "(b) confident"]
    header += ["95% interval", "(c) top-5", f"meets {target:g}", *(f"{s} B med/mean" for s in sources)]
    trained = "; ".join(f"{b['bundle']}: {b['training_images']}" for b in report["bottlenecks"])
    return [f"learned bottlenecks, trained on (never judged): {trained}", format_table(header, rows, left=(0, 1)), ""]


def _bounds_lines(report: dict) -> list[str]:
    """The clips' code entropies (model/code_entropy): the fewest bytes a lossless coder of each form reaches."""
    rows = [
        [b, name, *(f"{by[name][bound]:,.0f}" for bound in BOUNDS)] for b, by in report["bounds"].items() for name in by
    ]
    if not rows:
        return []
    return [
        "lossless bounds on the clips, B/frame (entropy of the codes per channel, in-sample, so optimistic): intra = "
        "order 0; delta = order 0 of the difference to the frame before; given_reference = given the code before",
        format_table(["bits", "clip", *BOUNDS], rows, left=(1,)),
        "",
    ]


def _video_name(row: dict) -> str:
    what = "frame" if row["version"] == CAMERA else "model-scale"
    return f"{LABELS[row['codec']]} {what} crf {row['crf']}"


def _keyframes(interval: int) -> str:
    return "every frame" if interval == 0 else f"every {interval}"


def _bytes(stats: dict) -> str:
    return f"{stats['median']:,.0f}/{stats['mean']:,.0f}"


def _choice_lines(choice: dict, sources: Sequence[str], unit: str = "frames") -> list[str]:
    target = choice["target"]
    if not choice["supported"]:
        return [
            f"target {target:g}: the set cannot support it; its lower bound needs at least {choice['needed']} "
            f"confident {unit} without a disagreement (judge on more frames, e.g. a larger --eval-count)",
            "",
        ]
    if choice["cheapest"] is None:
        return [f"target {target:g}: no bit width meets the rule", ""]
    header = ["codec", "key frames", "bits", *(f"{s} B med/mean" for s in sources)]
    rows = [
        [r["codec"], _keyframes(r["keyframe_interval"]), r["bits"], *(_bytes(r["bytes"][s]) for s in sources)]
        for r in choice["settings"]
    ]
    best = choice["cheapest"]
    return [
        f"target {target:g} (needs {choice['needed']} confident {unit}): bits meeting the rule "
        f"{', '.join(map(str, choice['bits_meeting']))}; the fewest bytes per codec and key-frame interval:",
        format_table(header, rows, left=(0, 1)),
        f"cheapest: bits {best['bits']}, codec {best['codec']}, keyframe_interval {best['keyframe_interval']}",
        "",
    ]


def _footer(report: dict) -> str:
    boxes = report.get("task") == "detection"
    sources = "; ".join(
        f"{s['name']}: {s['frames']} frames, {s['boxes']} unsplit boxes, {s['confident']} confident, median score "
        f"{s['median_box_score']:.2f}"
        if boxes
        else f"{s['name']}: {s['frames']} frames, {s['confident']} confident, median top-1 probability "
        f"{s['median_top1_probability']:.2f}"
        for s in report["sources"]
    )
    sure = "an unsplit box's score" if boxes else "unsplit top-1 probability"
    shapes = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in report["tensors"].items())
    return (
        f"{shapes}, ranges ({report['quantization']}, least error at each bit width) and entropy tables fitted on "
        f"{report['fit']['frames']} frames of {report['fit']['images']} (P-frame tables: {report['delta_fit']['frames']} "
        f"frames of {report['delta_fit']['images']}). Judged: {sources}. Confident: {sure} "
        f">= {report['confidence']:g}; {ag.DEPENDENCE_NOTE}. '= intra': every decoded code equals intra "
        f"coding's."
    )


def _ints(low: int, high: int) -> Callable[[str], tuple[int, ...]]:
    one = int_in(low, high)

    def parse(text: str) -> tuple[int, ...]:
        return tuple(sorted({one(part) for part in text.split(",")}))

    return parse


def _codecs(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    unknown = [n for n in names if n not in HEAD_CODECS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown codec(s) {', '.join(unknown)}; use {', '.join(HEAD_CODECS)}")
    return names


def build_parser() -> ToolParser:
    p = ToolParser(prog="bench video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, metavar="DIR", help="a single-cut bundle (split; calibration not needed)")
    p.add_argument("--images", default="photos:train", help="frames the ranges and entropy tables are fitted on")
    p.add_argument("--count", type=int_in(2, 10_000), default=200, help="how many of them (default 200)")
    p.add_argument(
        "--delta-images",
        help="frames, in order, the P-frames' delta tables are fitted on (default: --images); e.g. a clip not judged",
    )
    p.add_argument("--delta-count", type=int_in(2, 10_000), default=400, help="how many of them (default 400)")
    p.add_argument(
        "--eval-images",
        default="photos:test,video:bikes,video:carphone",
        help="frames judged, comma-separated sources, each in order (default: photos:test,video:bikes,video:carphone)",
    )
    p.add_argument(
        "--eval-count", type=int_in(2, 10_000), default=400, help="at most this many of EACH source (default 400)"
    )
    p.add_argument("--bits", type=_ints(min(CODE_BITS), max(CODE_BITS)), default=(2, 3, 4, 5, 6, 7, 8))
    p.add_argument("--codecs", type=_codecs, default=("zstd", "entropy"), help="default: zstd,entropy")
    p.add_argument(
        "--keyframe-intervals",
        type=_ints(0, MAX_INTERVAL),
        default=(0, 10),
        help="head keyframe_interval values (0: intra only; default 0,10)",
    )
    p.add_argument(
        "--quantization",
        choices=[m for m in MODES if m != "clip"],
        default="calibrated",
        help="range mode: calibrated (per tensor, the default) or per_channel",
    )
    p.add_argument("--target", type=float_in(0.0, 1.0, low_open=True), default=0.99, help="agreement target (0.99)")
    p.add_argument(
        "--confidence",
        type=float_in(0.0, 1.0),
        help=f"a confident frame's unsplit top-1 probability (default {ag.DEFAULT_CONFIDENCE}), or a confident "
        f"box's score (default {DEFAULT_BOX_CONFIDENCE})",
    )
    p.add_argument("--answer-all", action="store_true", help="run the tail on every pass, not once per bit width")
    add_video_codecs(p)
    add_bottleneck(p)
    p.add_argument("--seed", type=int, default=0, help="random seed of the photo crops (judged: seed + 1)")
    p.add_argument("--json", metavar="FILE", help="also write the measurements to this file as JSON")
    return p


def _confidence(args: argparse.Namespace) -> float:
    """--confidence, or the default of the bundle's task (a class probability, or a box score)."""
    if args.confidence is not None:
        return args.confidence
    detects = load_bundle(args.bundle).manifest.task == "detection"
    return DEFAULT_BOX_CONFIDENCE if detects else ag.DEFAULT_CONFIDENCE


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    check_outputs([("--json", args.json)], [])
    if args.target >= 1.0:
        raise UsageError(f"--target must be below 1 (a Wilson lower bound never reaches 1), got {args.target}")
    options = VideoBenchOptions(
        Path(args.bundle),
        images=args.images,
        count=args.count,
        eval_images=args.eval_images,
        delta_images=args.delta_images,
        delta_count=args.delta_count,
        eval_count=args.eval_count,
        bits=args.bits,
        codecs=args.codecs,
        intervals=args.keyframe_intervals,
        mode=args.quantization,
        confidence=_confidence(args),
        seed=args.seed,
        answer_all=args.answer_all,
        video_codecs=args.video_codecs,
        bottlenecks=tuple(args.bottleneck),
    )
    report = measure_video(options)
    choices = select(report, args.target)
    report["selection"] = choices
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    print(format_report(report, choices))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`bench video` (argv after its name): the tables on stdout; bad arguments are one `error:` line (exit 2)."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

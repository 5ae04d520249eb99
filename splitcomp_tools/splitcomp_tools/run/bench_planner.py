"""bench planner: every candidate of a plan measured over the test bed at each rate, against what `plan` predicted.

`plan ... --work DIR --json PLAN.json` keeps one single-cut bundle per candidate, encoded as
planned, and the old rule's bundle (`choose_cut` at calibrate's default 4 bits). This puts them
all in one measurement bundle (a multi-cut bundle whose bandwidth ranges are only labels, one unit
wide each) and runs `bench pipeline --link RATE --cycle-cuts` once per rate: the head takes every
cut in turn for a few seconds, several rounds, so all candidates are measured in the same run,
interleaved, under the same load, `--runs` times (3). It reports per rate every candidate's predicted
latency, the median of its runs' median latencies and the prediction's error (the goal: within 15 %),
the best candidate measured against the planner's pick (the goal: within 5 % of the best), and the
old rule's latency. A candidate that answered no frame in a run is reported failed there, never left out.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.cli import format_table as table
from splitcomp_tools.run import link_loss
from splitcomp_tools.run.deployed import CycleSettings, measurement_bundle, run_cycle

PICK_TOLERANCE = 0.05  # the goal: the pick's measured latency within 5 % of the best candidate's
PREDICTION_TOLERANCE = 0.15  # the goal: every candidate's prediction within 15 % of its measured median
OLD_RULE = "old rule"


def measure(bundle: Path, mbps: float, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One `bench pipeline --link --cycle-cuts` run of the measurement bundle at `mbps`; its JSON result."""
    settings = CycleSettings(
        args.rate, args.block, args.rounds, args.settle, args.source, args.robot_cpus, args.edge_cpus, args.loss
    )
    return run_cycle(bundle, mbps, settings, out)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.inf


def judge(plan: dict[str, Any], measured: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per rate: every candidate's prediction against the median of its runs' medians (a cut that answered no frame
    in a run counts as failed there), the best measured candidate, the pick and how far it is from the best."""
    rows = []
    predicted = {c["cut_id"]: c["predicted_ms"] for c in plan["candidates"]}
    for rate, runs in measured.items():
        per_run = [
            {cut.replace("_", " ") if cut == "old_rule" else cut: r for cut, r in run["per_cut"].items()}
            for run in runs
        ]
        cuts = [*predicted, *([OLD_RULE] if any(OLD_RULE in r for r in per_run) else [])]
        medians = {cut: [r[cut]["median_ms"] for r in per_run if cut in r] for cut in cuts}
        latency = {cut: _median(ms) for cut, ms in medians.items()}  # inf: no run answered a frame of it
        candidates = {cut: latency[cut] for cut in predicted}
        best, pick = min(candidates, key=candidates.__getitem__), plan["best"][rate]
        errors = {
            cut: predicted[cut][rate] / latency[cut] - 1.0 if math.isfinite(latency[cut]) else None for cut in predicted
        }
        row = {
            "mbps": rate,
            "measured_ms": latency,
            "runs_ms": medians,
            "failed_runs": {cut: len(runs) - len(ms) for cut, ms in medians.items() if len(ms) < len(runs)},
            "predicted_ms": {cut: predicted[cut][rate] for cut in predicted},
            "prediction_error": errors,
            "best": best,
            "pick": pick,
            "pick_over_best": latency[pick] / latency[best] - 1.0 if math.isfinite(latency[best]) else math.nan,
            "pick_predicted_ms": predicted[pick][rate],
            "old_rule_ms": latency.get(OLD_RULE),
            "frames": {cut: [r[cut]["frames"] for r in per_run if cut in r] for cut in cuts},
            "lost_features": [run["lost_features"] for run in runs],
            "transport_overhead_ms": {
                cut: _median([r[cut]["transport_overhead_ms"] for r in per_run if cut in r]) for cut in cuts
            },
        }
        row["pick_ok"] = row["pick_over_best"] <= PICK_TOLERANCE
        row["predictions_ok"] = all(e is not None and abs(e) <= PREDICTION_TOLERANCE for e in errors.values())
        rows.append(row)
    return rows


def format_table(plan: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """Two tables: every candidate's prediction against its measured median per rate; per rate the pick against the
    best measured."""
    cuts = [c["cut_id"] for c in plan["candidates"]]
    errors = []
    for row in rows:
        for cut in cuts:
            ms, error = row["measured_ms"][cut], row["prediction_error"][cut]
            runs = ", ".join(f"{v:.1f}" for v in row["runs_ms"][cut]) + ", failed" * row["failed_runs"].get(cut, 0)
            errors.append(
                [
                    row["mbps"],
                    cut + (" (pick)" if cut == row["pick"] else "") + ("*" if cut == row["best"] else ""),
                    f"{row['predicted_ms'][cut]:.1f}",
                    "failed" if not math.isfinite(ms) else f"{ms:.1f}",
                    runs.lstrip(", ") or "failed",
                    "-"
                    if error is None
                    else f"{100 * error:+.1f} %" + ("" if abs(error) <= PREDICTION_TOLERANCE else " !"),
                ]
            )
    picks = [
        [
            row["mbps"],
            row["best"],
            row["pick"],
            f"{100 * row['pick_over_best']:+.1f} %" + ("" if row["pick_ok"] else " (over 5 %)"),
            "-" if row["old_rule_ms"] is None else f"{row['old_rule_ms']:.1f}",
            "yes" if row["predictions_ok"] else "no",
        ]
        for row in rows
    ]
    old = plan.get("heuristic")
    return "\n".join(
        [
            "median end-to-end latency (ms) over the test bed, the median of the runs' medians; * = best measured; "
            "! = prediction off by more than 15 %",
            table(["Mbit/s", "cut", "predicted", "measured", "runs", "error"], errors, left=(1,)),
            "",
            f"the plan's pick against the best measured; old rule = {old} at 4 bits",
            table(
                ["Mbit/s", "best measured", "pick", "pick vs best", "old rule ms", "all within 15 %"],
                picks,
                left=(1, 2),
            ),
        ]
    )


def build_parser() -> ToolParser:
    p = ToolParser(prog="bench planner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", required=True, help="the JSON of `plan --work DIR --json F` (its bundles must exist)")
    p.add_argument("--rates", help="link rates in Mbit/s (default: the plan's bandwidths)")
    p.add_argument("--rate", type=float, default=10.0, help="camera frames per second (default 10)")
    p.add_argument("--block", type=float, default=4.0, help="seconds on each cut before the next (default 4)")
    p.add_argument("--rounds", type=int, default=3, help="times through all the cuts per rate (default 3)")
    p.add_argument("--settle", type=float, default=1.5, help="seconds left out after each switch (default 1.5)")
    p.add_argument("--source", default="generator", help="image_source's frames (default generator)")
    p.add_argument("--runs", type=int, default=3, help="runs per rate; the figures are medians of theirs (default 3)")
    p.add_argument(
        "--robot-cpus", default="", metavar="LIST", help="pin the robot side to these CPUs (see bench pipeline)"
    )
    p.add_argument("--edge-cpus", default="", metavar="LIST", help="pin the edge side to these CPUs")
    p.add_argument(
        "--loss",
        type=link_loss.checked_loss,
        metavar="PCT",
        help="drop this share of packets (percent) at random each way on the bed (default: none)",
    )
    p.add_argument("--out", default="out/bench_planner", help="logs and results (default out/bench_planner)")
    p.add_argument("--json", help="also write the measurements and the judgement here")
    return p


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    bundles = {c["cut_id"]: c["bundle"] for c in plan["candidates"]}
    if plan.get("old_rule_bundle"):
        bundles[OLD_RULE] = plan["old_rule_bundle"]
    missing = [cut for cut, path in bundles.items() if not path or not Path(path).is_dir()]
    if missing:
        raise SplitcompError(f"{args.plan}: no bundle for {missing}; run plan with --work DIR so they are kept")
    rates = [r.strip() for r in args.rates.split(",")] if args.rates else list(plan["best"])
    unknown = [r for r in rates if r not in plan["best"]]
    if unknown:
        raise SplitcompError(f"--rates {unknown}: the plan predicts only for {list(plan['best'])}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = measurement_bundle(bundles, out / "all_cuts")
    if not 1 <= args.runs <= 20:
        raise SplitcompError(f"--runs must be 1 to 20, got {args.runs}")
    measured: dict[str, list[dict[str, Any]]] = {}
    for rate in rates:
        for k in range(args.runs):
            result = measure(bundle, float(rate), args, out / rate / f"run{k + 1}")
            measured.setdefault(rate, []).append(result)
            for cut, figures in result["per_cut"].items():
                print(
                    f"{rate:>6} Mbit/s run {k + 1} {cut:>10}: {figures['median_ms']:8.1f} ms (p95 "
                    f"{figures['p95_ms']:.1f}), {figures['frames']} frames, overhead "
                    f"{figures['transport_overhead_ms']:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    rows = judge(plan, measured)
    print(format_table(plan, rows))
    if args.json:
        atomic_write_text(args.json, json.dumps({"plan": args.plan, "rows": rows, "runs": measured}, indent=1) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())

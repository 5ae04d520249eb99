"""bench planner: every candidate of a plan measured over the test bed at each rate, against what `plan` predicted.

`plan ... --work DIR --json PLAN.json` keeps one single-cut bundle per candidate, encoded as
planned, and the old rule's bundle (`choose_cut` at calibrate's default 4 bits). This puts them
all in one measurement bundle (a multi-cut bundle whose bandwidth ranges are only labels, one unit
wide each) and runs `bench pipeline --link RATE --cycle-cuts` once per rate: the head takes every
cut in turn for a few seconds, several rounds, so all candidates are measured in the same run,
interleaved, under the same load. It reports per rate every candidate's median latency, the best
of them, the planner's pick (within 10 % of the best?), the pick's predicted latency (within 25 %
of the measured one?), and the old rule's latency.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.bundle import CutChoice, load_bundle, write_multi_cut_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_core.files import atomic_write_text
from splitcomp_tools.cli import ToolParser, run_cli
from splitcomp_tools.cli import format_table as table
from splitcomp_tools.run import link_loss

PICK_TOLERANCE = 0.10  # the pick's measured latency may exceed the best candidate's by this share
PREDICTION_TOLERANCE = 0.25  # predicted and measured latency of the pick may differ by this share
OLD_RULE = "old rule"


def measurement_bundle(bundles: dict[str, str], out: Path) -> Path:
    """All the bundles as the cuts of one multi-cut bundle, cut k selected by bandwidth_mbps k + 0.5."""
    cuts = [
        CutChoice(cut_id.replace(" ", "_"), load_bundle(path), float(k), float(k + 1) if k + 1 < len(bundles) else None)
        for k, (cut_id, path) in enumerate(bundles.items())
    ]
    return write_multi_cut_bundle(out, cuts, cuts[0].cut_id, {}, overwrite=True).path


def measure(bundle: Path, mbps: float, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One `bench pipeline --link --cycle-cuts` run of the measurement bundle at `mbps`; its JSON result."""
    result = out / "result.json"
    command = [
        sys.executable,
        "-m",
        "splitcomp_tools.bench",
        "pipeline",
        "--bundle",
        str(bundle),
        "--link",
        str(mbps),
        "--rate",
        str(args.rate),
        "--cycle-cuts",
        str(args.block),
        "--rounds",
        str(args.rounds),
        "--settle",
        str(args.settle),
        "--source",
        args.source,
        "--robot-cpus",
        args.robot_cpus,
        *(["--loss", str(args.loss)] if args.loss is not None else []),
        "--out",
        str(out),
        "--json",
        str(result),
    ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SplitcompError(f"bench pipeline failed at {mbps} Mbit/s: {run.stderr.strip()[-600:]}")
    return json.loads(result.read_text())


def judge(plan: dict[str, Any], measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rate: the best measured candidate, the pick and how far it is from the best and from its prediction."""
    rows = []
    predicted = {c["cut_id"]: c["predicted_ms"] for c in plan["candidates"]}
    for rate, run in measured.items():
        runs = {cut.replace("_", " ") if cut == "old_rule" else cut: r for cut, r in run["per_cut"].items()}
        latency = {c["cut_id"]: math.inf for c in plan["candidates"]}  # a cut that answered no frame in time
        latency.update({cut: r["median_ms"] for cut, r in runs.items()})
        candidates = {cut: ms for cut, ms in latency.items() if cut != OLD_RULE}
        best = min(candidates, key=candidates.__getitem__)
        pick = plan["best"][rate]
        row = {
            "mbps": rate,
            "measured_ms": latency,
            "best": best,
            "pick": pick,
            "pick_over_best": latency[pick] / latency[best] - 1.0,
            "pick_predicted_ms": predicted[pick][rate],
            "prediction_error": predicted[pick][rate] / latency[pick] - 1.0,
            "old_rule_ms": latency.get(OLD_RULE),
            "frames": {cut: r["frames"] for cut, r in runs.items()},
            "lost_features": run["lost_features"],
            "transport_overhead_ms": {cut: r["transport_overhead_ms"] for cut, r in runs.items()},
        }
        row["pick_ok"] = row["pick_over_best"] <= PICK_TOLERANCE
        row["prediction_ok"] = abs(row["prediction_error"]) <= PREDICTION_TOLERANCE
        rows.append(row)
    return rows


def format_table(plan: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    cuts = [c["cut_id"] for c in plan["candidates"]]
    header = ["Mbit/s", *cuts, OLD_RULE, "pick", "pick vs best", "predicted", "prediction"]
    lines = []
    for row in rows:
        cells = [row["mbps"]]
        for cut in [*cuts, OLD_RULE]:
            ms = row["measured_ms"].get(cut)
            cells.append("-" if ms is None else f"{ms:.1f}" + ("*" if cut == row["best"] else ""))
        cells += [
            row["pick"],
            f"{100 * row['pick_over_best']:+.1f} %" + ("" if row["pick_ok"] else " (over 10 %)"),
            f"{row['pick_predicted_ms']:.1f}",
            f"{100 * row['prediction_error']:+.1f} %" + ("" if row["prediction_ok"] else " (over 25 %)"),
        ]
        lines.append(cells)
    old = plan.get("heuristic")
    title = f"median end-to-end latency (ms) over the test bed; * = best candidate; old rule = {old} at 4 bits"
    return title + "\n" + table(header, lines, left=())


def build_parser() -> ToolParser:
    p = ToolParser(prog="bench planner", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", required=True, help="the JSON of `plan --work DIR --json F` (its bundles must exist)")
    p.add_argument("--rates", help="link rates in Mbit/s (default: the plan's bandwidths)")
    p.add_argument("--rate", type=float, default=10.0, help="camera frames per second (default 10)")
    p.add_argument("--block", type=float, default=4.0, help="seconds on each cut before the next (default 4)")
    p.add_argument("--rounds", type=int, default=3, help="times through all the cuts per rate (default 3)")
    p.add_argument("--settle", type=float, default=1.5, help="seconds left out after each switch (default 1.5)")
    p.add_argument("--source", default="generator", help="image_source's frames (default generator)")
    p.add_argument(
        "--robot-cpus", default="", metavar="LIST", help="pin the robot side to these CPUs (see bench pipeline)"
    )
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
    measured: dict[str, dict[str, Any]] = {}
    for rate in rates:
        measured[rate] = result = measure(bundle, float(rate), args, out / rate)
        for cut, figures in result["per_cut"].items():
            print(
                f"{rate:>6} Mbit/s {cut:>10}: {figures['median_ms']:8.1f} ms (p95 {figures['p95_ms']:.1f}), "
                f"{figures['frames']} frames, overhead {figures['transport_overhead_ms']:.2f} ms",
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

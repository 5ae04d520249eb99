"""Candidates measured as deployed: one `bench pipeline --cycle-cuts` run of several single-cut bundles at once.

The bundles become the cuts of one measurement bundle (a multi-cut bundle whose bandwidth ranges are only
labels, one unit wide each), and the head takes every cut in turn for a few seconds, several rounds, so all
candidates are measured in the same run, interleaved, under the same load: camera publisher, head, DDS and
tail running together at the camera's rate. Over the test bed (`mbps`) the features cross a shaped link
between two network namespaces; without it (`mbps` None) the nodes talk over loopback. `plan --deployed`,
`plan --refine` and `bench planner` measure through here. No rclpy: the run is a child process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from splitcomp_core.bundle import CutChoice, load_bundle, write_multi_cut_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.candidates import Candidate
from splitcomp_tools.model.deployed import Deployed
from splitcomp_tools.model.refine import REFINE_TOP
from splitcomp_tools.run.testbed import why_unavailable


@dataclasses.dataclass(frozen=True)
class CycleSettings:
    """How each run cycles the cuts: camera rate, seconds per cut and rounds, the frames and the pinning."""

    rate: float = 10.0  # camera frames per second
    block: float = 4.0  # seconds on each cut before the next
    rounds: int = 3  # times through all the cuts
    settle: float = 1.5  # seconds left out after each switch
    source: str = "generator"
    robot_cpus: str = ""
    edge_cpus: str = ""
    loss: float | None = None  # percent of packets dropped each way on the bed

    def arguments(self) -> list[str]:
        """The bench pipeline options these settings stand for."""
        pins = [("--robot-cpus", self.robot_cpus), ("--edge-cpus", self.edge_cpus)]
        return [
            *("--rate", str(self.rate), "--cycle-cuts", str(self.block), "--rounds", str(self.rounds)),
            *("--settle", str(self.settle), "--source", self.source),
            *(arg for flag, cpus in pins if cpus for arg in (flag, cpus)),
            *(["--loss", str(self.loss)] if self.loss is not None else []),
        ]

    def describe(self) -> str:
        pins = [f"{side} CPUs {cpus}" for side, cpus in (("robot", self.robot_cpus), ("edge", self.edge_cpus)) if cpus]
        return f"{self.rate:g} frames/s, {self.rounds} x {self.block:g} s per candidate" + "".join(
            f", {p}" for p in pins
        )


def measurement_bundle(bundles: dict[str, str], out: Path) -> Path:
    """All the bundles as the cuts of one multi-cut bundle, cut k selected by bandwidth_mbps k + 0.5."""
    cuts = [
        CutChoice(cut_id.replace(" ", "_"), load_bundle(path), float(k), float(k + 1) if k + 1 < len(bundles) else None)
        for k, (cut_id, path) in enumerate(bundles.items())
    ]
    return write_multi_cut_bundle(out, cuts, cuts[0].cut_id, {}, overwrite=True).path


def run_cycle(bundle: Path, mbps: float | None, settings: CycleSettings, out: Path) -> dict[str, Any]:
    """One `bench pipeline --cycle-cuts` run of a measurement bundle (over the bed at `mbps`, else loopback); its
    JSON result, whose `per_cut` holds each cut's medians (a cut that answered no frame is absent)."""
    out.mkdir(parents=True, exist_ok=True)
    result = out / "result.json"
    command = [sys.executable, "-m", "splitcomp_tools.bench", "pipeline", "--bundle", str(bundle)]
    command += [*(["--link", str(mbps)] if mbps is not None else []), *settings.arguments()]
    command += ["--out", str(out), "--json", str(result)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    where = f"at {mbps:g} Mbit/s" if mbps is not None else "on loopback"
    if run.returncode != 0:
        raise SplitcompError(f"bench pipeline failed {where}: {run.stderr.strip()[-600:]}")
    return json.loads(result.read_text())


def measure_cuts(
    bundles: dict[str, str], mbps: float | None, settings: CycleSettings, out: Path
) -> tuple[dict[str, dict[str, Any] | None], str | None]:
    """Each bundle's medians from one interleaved run, None for a cut that answered no frame; and the reason when
    the run itself failed (then every cut is None)."""
    out.mkdir(parents=True, exist_ok=True)
    bundle = measurement_bundle(bundles, out / "all_cuts")
    try:
        per_cut = run_cycle(bundle, mbps, settings, out / "run").get("per_cut", {})
    except SplitcompError as exc:
        return dict.fromkeys(bundles), str(exc)
    return {cut_id: per_cut.get(cut_id.replace(" ", "_")) for cut_id in bundles}, None


def cpu_count(cpus: str, flag: str = "--robot-cpus") -> int:
    """How many CPUs a taskset list such as 0 or 0,2-3 names; an error naming `flag` if it names CPUs this machine
    (this process) cannot run on."""
    try:
        named = {
            cpu
            for part in cpus.split(",")
            for a, _, b in [part.partition("-")]
            for cpu in range(int(a), int(b or a) + 1)
        }
    except ValueError:
        raise SplitcompError(f"{flag} {cpus!r} is not a CPU list such as 0 or 0,2-3") from None
    usable = os.sched_getaffinity(0)
    if not named or not named <= usable:
        lacking = sorted(named - usable)
        raise SplitcompError(
            f"{flag} {cpus}: this machine has no CPU {', '.join(map(str, lacking)) or 'there'}; "
            f"it can pin to {_cpu_list(usable)}"
        )
    return len(named)


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


WHERE_CHOICES = ("auto", "bed", "loopback")


def where_to_run(asked: str) -> str | None:
    """None to run on the test bed; else why the runs go over loopback (asked, or no bed can be made here with
    `auto`). Asking for the bed where none can be made is an error that says why."""
    if asked == "loopback":
        return "loopback (asked for)"
    reason = why_unavailable()
    if reason is None:
        return None
    if asked == "bed":
        raise SplitcompError(f"--deployed bed: the test bed cannot be made here: {reason}; use --deployed loopback")
    return f"loopback (no test bed here: {reason})"


def check_refine(top: int, where: str | None) -> None:
    """--refine N measures 2 to 10 candidates per rate on the test bed: refused where that cannot be."""
    if not 2 <= top <= 10:
        raise SplitcompError(f"--refine measures 2 to 10 candidates per rate, got {top}")
    if where == "loopback":
        raise SplitcompError("--refine measures at each rate on the test bed: not with --deployed loopback")
    reason = why_unavailable()
    if reason is not None:
        raise SplitcompError(f"--refine measures on the test bed, which cannot be made here: {reason}")


def deployed_measure(
    loopback: str | None, mbps: float, settings: CycleSettings, out: Path
) -> Callable[[Sequence[Candidate]], Deployed]:
    """plan --deployed's measurement: every candidate in one interleaved run, over the bed at `mbps` (or loopback)."""

    def measure(candidates: Sequence[Candidate]) -> Deployed:
        bundles = {c.cut_id: str(c.bundle) for c in candidates}
        per_cut, error = measure_cuts(bundles, None if loopback else mbps, settings, out)
        where = loopback or f"the test bed at {mbps:g} Mbit/s"
        return Deployed(f"{where}, {settings.describe()}", math.inf if loopback else mbps, per_cut, error)

    return measure


def refine_measure(settings: CycleSettings, out: Path) -> Callable[[Sequence[Candidate], float], dict[str, Any]]:
    """plan --refine's measurement: the given candidates in one interleaved run over the bed at the rate."""

    def measure(candidates: Sequence[Candidate], mbps: float) -> dict[str, float | None]:
        bundles = {c.cut_id: str(c.bundle) for c in candidates}
        per_cut, _error = measure_cuts(bundles, mbps, settings, out / f"refine_{mbps:g}")
        return {cut: (figures["median_ms"] if figures else None) for cut, figures in per_cut.items()}

    return measure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """plan's options for measuring as deployed (--deployed) and for picking by measurement (--refine)."""
    add = parser.add_argument
    deployed = "measure each candidate's head and tail times (and the transport overhead's fit) from one run of all "
    deployed += "candidates in turn with camera, head, DDS and tail at work at --timing-rate: on the test bed (bed; "
    deployed += "an error where it cannot be made), on loopback, or auto (the bed where it can be made; default)"
    add("--deployed", nargs="?", const="auto", choices=WHERE_CHOICES, help=deployed)
    add("--deployed-link", type=float, metavar="MBPS", help="the bed's link rate then (default: the highest rate)")
    add("--deployed-block", type=float, default=3.0, metavar="S", help="seconds per candidate per round (default 3)")
    add("--deployed-rounds", type=int, default=2, metavar="N", help="rounds through the candidates (default 2)")
    pin = "pin the {} side to these CPUs in the runs (a taskset list, e.g. {}; on a 2-core machine 0 and 1)"
    add("--robot-cpus", default="", metavar="LIST", help=pin.format("robot (camera, head)", "0"))
    add("--edge-cpus", default="", metavar="LIST", help=pin.format("edge (tail)", "1"))
    refine = "then measure the N best-predicted candidates per rate that lie within the prediction's error of the "
    refine += f"best on the test bed, and pick by measurement (N default {REFINE_TOP})"
    add("--refine", nargs="?", type=int, const=REFINE_TOP, metavar="N", help=refine)


def settings_from(args: argparse.Namespace, rate: float) -> CycleSettings:
    """The runs' settings from plan's options, checked (CPUs this machine lacks, a block no longer than settling)."""
    for flag, cpus in (("--robot-cpus", args.robot_cpus), ("--edge-cpus", args.edge_cpus)):
        if cpus:
            if not (args.deployed or args.refine):
                raise SplitcompError(f"{flag} pins the runs of --deployed or --refine: give one of them")
            cpu_count(cpus, flag)
    if not 1.0 < args.deployed_block <= 60 or not 1 <= args.deployed_rounds <= 20:
        raise SplitcompError("--deployed-block must be 1 to 60 s and --deployed-rounds 1 to 20")
    if (args.deployed or args.refine) and rate <= 0:
        raise SplitcompError("--deployed and --refine run at the camera's --timing-rate: give one above 0")
    if args.deployed_link is not None and not 0 < args.deployed_link <= 100_000:
        raise SplitcompError(f"--deployed-link must be above 0 and at most 100000 Mbit/s, got {args.deployed_link}")
    if args.profile_device and (args.deployed or args.refine):
        raise SplitcompError("--deployed and --refine make a plan: not with --profile-device")
    settle = min(1.5, args.deployed_block / 2)
    return CycleSettings(
        rate,
        args.deployed_block,
        args.deployed_rounds,
        settle,
        args.images or "generator",
        args.robot_cpus,
        args.edge_cpus,
    )

"""bench pipeline over a lossy link: every configuration (packet loss x keyframe_interval x reference x features
QoS reliability) run in turn on one test bed, each a fresh image_source -> head_node -> tail_node, one row each.

Packet loss is what the bed drops (its qdisc counters, both ways); message loss is what the tail saw
(sequence gaps). A lost message should cost only itself: `extra lost per lost message` counts the frames the
head published up to the last answered one that were neither answered nor lost on the way, per lost message.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from splitcomp_core.errors import SplitcompError
from splitcomp_core.keyframes import MAX_INTERVAL
from splitcomp_tools.cli import format_table
from splitcomp_tools.run.testbed import Bed


@dataclasses.dataclass(frozen=True)
class Config:
    """One row: the bed's packet loss and the head's (and tail's) settings."""

    loss_pct: float
    keyframe_interval: int
    reference: str
    reliability: str

    def head_params(self) -> dict[str, object]:
        params: dict[str, object] = {"keyframe_interval": self.keyframe_interval}
        if self.keyframe_interval:
            params["reference"] = self.reference
        return {**params, "features_reliability": self.reliability}


def parse_list(text: str, what: str, allowed: Sequence[str]) -> list[str]:
    """A comma list of names from `allowed` (SplitcompError names the flag and the choices)."""
    items = [item.strip() for item in text.split(",")]
    if any(item not in allowed for item in items):
        raise SplitcompError(f"{what} takes {', '.join(allowed)} joined by commas, got {text!r}")
    return items


def parse_intervals(text: str) -> list[int]:
    """`--keyframe-interval 0,30`: each an integer 0..MAX_INTERVAL."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        values = [-1]
    if any(not 0 <= v <= MAX_INTERVAL for v in values):
        raise SplitcompError(f"--keyframe-interval takes integers 0..{MAX_INTERVAL} joined by commas, got {text!r}")
    return values


def configs(
    losses: Sequence[float], intervals: Sequence[int], references: Sequence[str], reliabilities: Sequence[str]
) -> list[Config]:
    """Every combination; intra coding (interval 0) has no reference, so it is one row per loss and QoS."""
    out = []
    for reliability, loss, interval in itertools.product(reliabilities, losses, intervals):
        for reference in references if interval else ["-"]:
            out.append(Config(loss, interval, reference, reliability))
    return out


def row(config: Config, measured: dict[str, Any], packets: tuple[int, int]) -> dict[str, Any]:
    """One configuration's figures from bench pipeline's `measure` and the bed's packet counters over the run."""
    # The head numbers its messages 1, 2, ...: up to the last answered one, each was answered, lost on the way (a
    # sequence gap at the tail) or lost for another reason. Those after it are left out: the run ended on them.
    published = measured["last_answered_sequence"]
    answered = measured["frames_classified"]
    lost = measured["lost_before_tail"]
    passed, dropped = packets
    extra = max(published - answered - lost, 0)
    return {
        **dataclasses.asdict(config),
        "packets": passed + dropped,
        "packet_loss": dropped / (passed + dropped) if passed + dropped else 0.0,
        "published": published,
        "lost_messages": lost,
        "message_loss": lost / published if published else 0.0,
        "answered": answered,
        "extra_lost_per_lost_message": extra / lost if lost else (0.0 if not extra else float("inf")),
        "unanswered_not_lost": extra,
        "key_frames": measured["key_frames"],
        "chains_broken": measured["keyframe_losses"],
        "bytes_per_frame": measured["bytes_per_frame"],
        "latency_p50_ms": measured["median_ms"]["end_to_end_latency"],
        "latency_p95_ms": measured["latency_p95_ms"],
        "tail_rejects": measured["tail_rejects"],
    }


HEADERS = (
    "QoS",
    "loss set",
    "keyframe_interval",
    "reference",
    "packets dropped",
    "message loss",
    "answered / published",
    "extra lost per lost message",
    "key frames",
    "bytes/frame",
    "latency p50 / p95 ms",
)


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The table docs/video.md shows."""
    body = [
        [
            r["reliability"],
            f"{r['loss_pct']:g} %",
            str(r["keyframe_interval"]),
            r["reference"],
            f"{r['packet_loss']:.1%} of {r['packets']:,}",
            f"{r['message_loss']:.1%} ({r['lost_messages']})",
            f"{r['answered']} / {r['published']}",
            f"{r['extra_lost_per_lost_message']:.2f}" if r["lost_messages"] else f"- ({r['unanswered_not_lost']})",
            str(r["key_frames"]),
            f"{r['bytes_per_frame']:,.0f}",
            f"{r['latency_p50_ms']:.1f} / {r['latency_p95_ms']:.1f}",
        ]
        for r in rows
    ]
    return format_table(HEADERS, body)


def run_all(
    bed: Bed | None, plan: Sequence[Config], one_run: Callable[[Config], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each configuration in turn: set the bed's loss, run it (`one_run` returns `measure`'s dict), count packets."""
    rows = []
    for config in plan:
        if bed is not None:
            bed.set_loss(config.loss_pct)
        before = bed.packet_counts() if bed is not None else (0, 0)
        measured = one_run(config)
        after = bed.packet_counts() if bed is not None else (0, 0)
        rows.append(row(config, measured, (after[0] - before[0], after[1] - before[1])))
        print(format_rows(rows[-1:]).splitlines()[-1], flush=True)
    return rows

"""/diagnostics for the nodes: counters, rates and rolling percentiles as one DiagnosticStatus.

A node keeps a NodeHealth, feeds it from its hot path (cheap appends), and publishes it once a
second from a timer. The level rules live here so head and tail judge health the same way.
"""

from __future__ import annotations

import collections
import socket

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from splitcomp_core.stats import RateMeter, RollingStats

NO_INPUT_WARN_S = 5.0
REJECT_SHARE_WARN = 0.1
REJECT_SHARE_ERROR = 0.5


class NodeHealth:
    """What a node has seen: frames in/out, drops, rejects by reason, and stage timings."""

    def __init__(self, name: str, window: int = 300) -> None:
        self.name = name
        self.counts: dict[str, int] = collections.Counter()
        self.rejects: dict[str, int] = collections.Counter()
        self.stages = RollingStats(window)
        self.input_rate = RateMeter()
        self.output_rate = RateMeter()
        self._recent_rejects = RateMeter()
        self.fields: dict[str, str] = {}
        # Conditions the node itself watches (e.g. nobody subscribes to its output): each makes the level WARN.
        self.warnings: dict[str, str] = {}
        # Failures that stop the node answering (its inference server is down): each makes the level ERROR.
        self.errors: dict[str, str] = {}

    def received(self) -> None:
        self.counts["frames_in"] += 1
        self.input_rate.tick()

    def published(self) -> None:
        self.counts["frames_out"] += 1
        self.output_rate.tick()

    def dropped(self, n: int = 1) -> None:
        self.counts["dropped"] += n

    def rejected(self, reason: str) -> None:
        self.rejects[reason] += 1
        self._recent_rejects.tick()

    def level(self) -> tuple:
        """(level, message): ERROR on a node's own errors or sustained rejects; WARN on no input, some rejects or warnings."""
        if self.errors:
            return DiagnosticStatus.ERROR, "; ".join(self.errors.values())
        idle = self.input_rate.seconds_since_last()
        rejects, inputs = self._recent_rejects.rate(), self.input_rate.rate()
        share = rejects / inputs if inputs > 0 else (1.0 if rejects > 0 else 0.0)
        if share >= REJECT_SHARE_ERROR and rejects > 0:
            return DiagnosticStatus.ERROR, f"rejecting most input ({rejects:.1f}/s)"
        problems = []
        if idle is None:
            problems.append("no input yet")
        elif idle > NO_INPUT_WARN_S:
            problems.append(f"no input for {idle:.0f} s")
        elif share >= REJECT_SHARE_WARN:
            problems.append(f"rejecting {100 * share:.0f}% of input")
        problems.extend(self.warnings.values())
        if problems:
            return DiagnosticStatus.WARN, "; ".join(problems)
        return DiagnosticStatus.OK, f"{self.output_rate.rate():.1f} fps"

    def to_status(self, hardware_id: str | None = None) -> DiagnosticStatus:
        level, message = self.level()
        values = dict(self.fields)
        values.update({k: str(v) for k, v in self.counts.items()})
        values["rejected"] = str(sum(self.rejects.values()))
        values.update({f"rejected.{reason}": str(n) for reason, n in self.rejects.items()})
        values["input_fps"] = f"{self.input_rate.rate():.2f}"
        values["output_fps"] = f"{self.output_rate.rate():.2f}"
        for stage in self.stages.names():
            percentiles = self.stages.percentiles(stage)
            if percentiles is None:  # never: a stage is named by its first sample
                continue
            p50, p95 = percentiles
            values[f"{stage}.p50"] = f"{p50:.3f}"
            values[f"{stage}.p95"] = f"{p95:.3f}"
        return DiagnosticStatus(
            level=level,
            name=self.name,
            message=message,
            hardware_id=hardware_id or socket.gethostname(),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )

    def to_array(self, stamp) -> DiagnosticArray:
        msg = DiagnosticArray()
        msg.header.stamp = stamp
        msg.status = [self.to_status()]
        return msg

"""The robots of `bench fleet`: each replays real encoded frames at a rate, and hears its answers.

The frames are encoded once (HeadPipeline over a frame source, photos:test by default); robot i replays them
from frame i on, so robots send different frames at once. Robots are spread evenly over each period, as
unsynchronised cameras are. Latency is the time from publishing a frame to receiving its answer (both in
this process), so it includes DDS both ways, the edge's queue and its inference. A frame never answered
counts as lost, whatever the reason (the edge's queue dropped it as stale, DDS lost it).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from splitcomp_core.bundle import Bundle
from splitcomp_core.codec import EncodedTensor
from splitcomp_core.head import HeadPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.qos import features_qos
from splitcomp_tools.frames.registry import open_source


def encode_frames(bundle: Bundle, source: str, count: int) -> list[list[EncodedTensor]]:
    """`count` frames of `source`, each through the head once: what every robot replays."""
    head = HeadPipeline(bundle, providers=["cpu"])
    frames = open_source(source)
    try:
        return [head(image, "rgb8").tensors for image in frames.frames(count)]
    finally:
        frames.close()


def features_topic(namespace: str, robot: str) -> str:
    """`robot`'s features topic under the bench's `namespace`, as the fleet tail resolves it."""
    base = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
    return f"{base}/{robot}/splitcomp/features"


def features_message(node: Node, robot: str, sequence: int, model_id: str, tensors: list) -> SplitFeatures:
    """One replayed frame of `robot`, stamped now."""
    msg = SplitFeatures()
    msg.header.frame_id = robot
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.sequence = sequence
    msg.model_id = model_id
    msg.tensors = tensors
    return msg


@dataclasses.dataclass
class RobotLog:
    """One robot's frames: when each was published and when its answer came (by sequence)."""

    sent: dict[int, float] = dataclasses.field(default_factory=dict)
    answered: dict[int, float] = dataclasses.field(default_factory=dict)

    def latencies_ms(self) -> list[float]:
        return [(self.answered[s] - t) * 1e3 for s, t in self.sent.items() if s in self.answered]

    def summary(self) -> dict:
        latencies = self.latencies_ms()
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (None, None)
        published = len(self.sent)
        return {
            "published": published,
            "answered": len(latencies),
            "lost": published - len(latencies),
            "p50_ms": None if p50 is None else float(p50),
            "p95_ms": None if p95 is None else float(p95),
        }


class Robots:
    """N robot publishers under `namespace` (robot_0 ... robot_{N-1}) and the probe that hears their answers."""

    def __init__(self, namespace: str, count: int, model_id: str, frames: Sequence[Sequence[EncodedTensor]]) -> None:
        self.names = [f"robot_{i}" for i in range(count)]
        self.model_id = model_id
        self.messages = [[tensor_to_msg(t) for t in tensors] for tensors in frames]
        self.logs = {name: RobotLog() for name in self.names}
        self.diagnostics: dict[str, dict[str, str]] = {}  # status name -> its key/values, the latest
        self.diagnostics_at: dict[str, float] = {}  # status name -> when the latest came (time.monotonic)
        self._context = Context()
        rclpy.init(context=self._context)
        self.node = rclpy.create_node("fleet_robots", context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        base = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        self._publishers = {}
        for name in self.names:
            self._publishers[name] = self.node.create_publisher(
                SplitFeatures, features_topic(namespace, name), features_qos()
            )
            self.node.create_subscription(
                Classification,
                f"{base}/{name}/splitcomp/classification",
                functools.partial(self._on_answer, name),
                50,
            )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_answer(self, robot: str, msg: Classification) -> None:
        self.logs[robot].answered.setdefault(msg.sequence, time.monotonic())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}
            self.diagnostics_at[status.name] = time.monotonic()

    def spin_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            self._executor.spin_once(timeout_sec=0.005)
        return True

    def wait_for_edge(self, timeout: float) -> bool:
        """Every robot's features have a subscriber (the edge is up)."""
        return self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in self._publishers.values()), timeout)

    def warm_up(self, timeout: float) -> bool:
        """One frame per robot until each has an answer (sequences below 0 are not counted)."""
        sequence = 0
        while True:
            sequence -= 1
            for i, name in enumerate(self.names):
                self._publish(name, i, sequence, record=False)
            if self.spin_until(lambda: all(log.answered for log in self.logs.values()), 1.0):
                break
            timeout -= 1.0
            if timeout <= 0:
                return False
        for log in self.logs.values():
            log.answered.clear()
        return True

    def run(self, rate_hz: float, duration_s: float, drain_s: float = 1.0) -> None:
        """Publish every robot's frames at `rate_hz` for `duration_s`, then wait `drain_s` for the last answers."""
        period = 1.0 / rate_hz
        offsets = [i * period / len(self.names) for i in range(len(self.names))]
        start = time.monotonic()
        ticks = int(duration_s * rate_hz)
        for tick in range(ticks):
            for i, name in enumerate(self.names):
                due = start + tick * period + offsets[i]
                self.spin_until(lambda due=due: time.monotonic() >= due, period)
                self._publish(name, i + tick, tick + 1)
        self.spin_until(lambda: False, drain_s)

    def _publish(self, robot: str, frame: int, sequence: int, record: bool = True) -> None:
        msg = features_message(
            self.node, robot, max(sequence, 0), self.model_id, self.messages[frame % len(self.messages)]
        )
        if record:
            self.logs[robot].sent[sequence] = time.monotonic()
        self._publishers[robot].publish(msg)

    def close(self) -> None:
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self._context)

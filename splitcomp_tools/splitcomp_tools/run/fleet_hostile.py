"""The hostile robot of `bench fleet --hostile`: one more robot on the edge, which floods, sends garbage, or runs
another bundle, while the well-behaved robots (splitcomp_tools.run.fleet_replay) are measured beside it.

It publishes on <namespace>/hostile_<kind>/splitcomp/features from a thread with its own rclpy context (sleeping
between messages, so it barely touches the measuring thread), and hears no answers: what the tail made of its
frames is read from the tail's /diagnostics, under the robot's own name.

- flood: the robots' own valid frames at FLOOD_FACTOR times their rate;
- garbage: the same frames made malformed, in turn: the payload cut short (`codec`), a wrong shape (`shape`),
  no tensors at all (`tensor_count`);
- other-bundle: the same frames under another bundle's model_id (`model_id`), as a robot that runs another
  bundle sends them.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

import rclpy
from rclpy.context import Context

from splitcomp_core.codec import EncodedTensor
from splitcomp_msgs.msg import SplitFeatures
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.qos import features_qos
from splitcomp_tools.run.fleet_replay import features_message, features_topic

KINDS = ("flood", "garbage", "other-bundle")
FLOOD_FACTOR = 10
OTHER_MODEL_ID = "sha256:" + "0" * 64  # no bundle's: a robot running another bundle is rejected as `model_id`


def robot_name(kind: str) -> str:
    """The hostile robot's namespace on the edge, e.g. hostile_other_bundle."""
    return "hostile_" + kind.replace("-", "_")


def garbage(tensors: Sequence[EncodedTensor], index: int) -> list[EncodedTensor]:
    """Frame `index` made malformed, one way in turn: payload cut short, a wrong shape, no tensors."""
    first, rest = tensors[0], list(tensors[1:])
    if index % 3 == 0:
        return [dataclasses.replace(first, data=first.data[:-3]), *rest]
    if index % 3 == 1:
        return [dataclasses.replace(first, shape=(*first.shape[:-1], first.shape[-1] + 1)), *rest]
    return []


class HostileRobot:
    """One hostile robot of `kind` under `namespace`; start() publishes for a while on its own thread."""

    def __init__(
        self,
        kind: str,
        namespace: str,
        model_id: str,
        frames: Sequence[Sequence[EncodedTensor]],
        rate_hz: float,
    ) -> None:
        self.kind, self.name = kind, robot_name(kind)
        self.rate_hz = rate_hz * FLOOD_FACTOR if kind == "flood" else rate_hz
        self.model_id = OTHER_MODEL_ID if kind == "other-bundle" else model_id
        made = [garbage(t, i) if kind == "garbage" else t for i, t in enumerate(frames)]
        self.messages = [[tensor_to_msg(t) for t in tensors] for tensors in made]
        self.published = 0
        self._context = Context()
        rclpy.init(context=self._context)
        self.node = rclpy.create_node("fleet_hostile", context=self._context)
        self._publisher = self.node.create_publisher(
            SplitFeatures, features_topic(namespace, self.name), features_qos()
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def wait_for_edge(self, timeout: float) -> bool:
        """Its features have a subscriber (its tail is up)."""
        deadline = time.monotonic() + timeout
        while self._publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def start(self, duration_s: float) -> None:
        """Publish at its rate for `duration_s`, on a thread, from now."""
        self._thread = threading.Thread(target=self._run, args=(duration_s,), name=self.name, daemon=True)
        self._thread.start()

    def _run(self, duration_s: float) -> None:
        period, start = 1.0 / self.rate_hz, time.monotonic()
        for n in range(int(duration_s * self.rate_hz)):
            if self._stop.wait(max(0.0, start + n * period - time.monotonic())):
                return
            messages = self.messages[n % len(self.messages)]
            self._publisher.publish(features_message(self.node, self.name, n + 1, self.model_id, messages))
            self.published += 1

    def stop(self) -> None:
        """Stop publishing (if it is still at it) and wait for its thread: `published` is final."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        self.stop()
        self.node.destroy_node()
        rclpy.shutdown(context=self._context)

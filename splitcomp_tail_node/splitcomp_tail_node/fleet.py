"""One tail for a fleet: per-robot topics, every frame decoded on arrival, fair batches on worker threads.

Each robot (a namespace relative to the tail's own) has its subscription, its publishers, its own
NodeHealth (frames, lost, rejects by reason, latency), its sequence gaps and its own inter-frame references
(at most MAX_SENDERS_PER_ROBOT senders of `reference_frames` frames each, so a robot that floods or lies about
its frame_id cannot push out another robot's). The executor thread only checks and decodes a frame,
acknowledges it on the robot's own splitcomp/ack, and queues it in a FairBatcher;
`inference_workers` threads each take batches of up to `max_batch` frames of one cut, run the tail once
per batch (ONNX Runtime, or a Triton server that merges batches itself: each worker keeps a batch of
requests in flight) and publish each answer to its robot. The batcher holds a robot back while its
frame is in inference, so its answers go out in order whatever the number of workers.
A frame pushed out of its robot's queue by a newer one is not inferred: it is counted as `stale`.

A backend failure (Triton down, slow, model not ready, a shape refused) drops the batch's frames,
counts them under the reason on each robot, makes the tail's own status an ERROR with one throttled
log line, and clears once an answer comes back: TritonSession reconnects by itself.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rclpy.time import Time

from splitcomp_core.batching import FLEET_INFERENCE_WORKERS, BatchHistogram, FairBatcher, Pending
from splitcomp_core.bundle import Bundle
from splitcomp_core.cuts import TailCuts
from splitcomp_core.errors import BackendUnavailable
from splitcomp_core.keyframes import DEFAULT_REFERENCE_FRAMES
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import SequenceGaps, sender_key
from splitcomp_core.stats import RollingStats
from splitcomp_core.tail import Decoded, FeaturesRejected, TailResult
from splitcomp_core.triton_session import triton_model_name
from splitcomp_msgs.msg import Classification, FeaturesAck, SplitFeatures
from splitcomp_ros.diagnostics import NodeHealth
from splitcomp_ros.messages import ack_msg, answer_msg, image_size, tensor_from_msg
from splitcomp_ros.node_support import Param
from splitcomp_ros.rejects import THROTTLE_S, Rejects, clip_text

BACKENDS = ("onnxruntime", "triton")
MAX_ROBOTS = 256
MAX_SENDERS_PER_ROBOT = 4  # cameras (frame_ids) and streams one robot may interleave, each with its references
MAX_WORKERS = 64
DYNAMIC_BATCH_COMMAND = "ros2 run splitcomp_tools split MODEL --at CUT --dynamic-batch --out BUNDLE"

FLEET_PARAMS = (
    Param(
        "robots",
        [],
        "Robot namespaces this tail serves, each relative to the tail's own: <robot>/splitcomp/features in, "
        "<robot>/splitcomp/classification out. Empty: one sender on splitcomp/features, as before.",
        read_only=True,
        default_text="[] (today's topics)",
    ),
    Param(
        "max_batch",
        8,
        "Most frames per tail run; a bundle whose tail takes batch 1 only runs one at a time.",
        read_only=True,
        int_range=(1, 256),
    ),
    Param(
        "batch_wait_ms",
        5,
        "Longest wait (ms) of a queued frame for other robots' frames to join its batch; it waits only while "
        "another robot's frame is due by then (from its recent rate), never when the batch cannot grow.",
        read_only=True,
        int_range=(0, 1000),
    ),
    Param(
        "inference_workers",
        FLEET_INFERENCE_WORKERS,
        "Threads that each take a batch and run the tail (ONNX Runtime runs them on one shared session; with "
        "backend triton, batches in flight). A robot has at most one frame in inference, so its answers stay in order.",
        read_only=True,
        int_range=(1, MAX_WORKERS),
    ),
    Param("backend", "onnxruntime", "What runs the tail's network.", read_only=True, choices=BACKENDS),
    Param("triton_url", "127.0.0.1:8001", "Triton's gRPC address (host:port) for backend triton.", read_only=True),
    Param(
        "triton_model",
        "",
        "Triton model name for backend triton; empty = the name triton_repo writes for the bundle "
        "(splitcomp-<model_id digest>, one per cut); a given name is used as is (<name>_<cut_id> per cut).",
        read_only=True,
        default_text="the name triton_repo writes",
    ),
    Param(
        "triton_timeout_s",
        1.0,
        "Longest wait for Triton's answer to one batch.",
        read_only=True,
        float_range=(0.01, 60.0),
    ),
)


def triton_models(bundle: Bundle, model: str) -> dict[str, str]:
    """The Triton model of each cut: by default the names `triton_repo` writes (triton_model_name); a given
    `model` names a single-cut bundle's model, and `<model>_<cut_id>` each cut's of a multi-cut bundle."""
    if not model:
        return {cut.cut_id: triton_model_name(cut) for cut in bundle.all_cuts()}
    if not bundle.cuts:
        return {bundle.cut_id: model}
    return {b.cut_id: f"{model}_{b.cut_id}" for b in bundle.all_cuts()}


@dataclasses.dataclass
class Queued:
    """A decoded frame waiting for inference, with the message it answers."""

    msg: SplitFeatures
    decoded: Decoded


@dataclasses.dataclass
class RobotPort:
    """One robot's topics, health and sequence gaps."""

    name: str
    topic: str
    health: NodeHealth
    rejects: Rejects
    gaps: SequenceGaps
    frames: InterFrameTail
    publish: Callable[[Classification], None]
    acknowledge: Callable[[FeaturesAck], None]


class FleetTail:
    """The per-robot serving of a fleet tail; `node` is the TailNode that owns its topics and clock."""

    def __init__(
        self,
        node: Any,
        tails: TailCuts,
        robots: Sequence[str],
        max_batch: int,
        wait_s: float,
        workers: int = 1,
        reference_frames: int = DEFAULT_REFERENCE_FRAMES,
    ) -> None:
        self.node = node
        self.tails = tails
        self.reference_frames = reference_frames
        self.max_batch = max_batch if all(p.batches for p in tails.pipelines.values()) else 1
        self.wait_s = wait_s
        self.histogram = BatchHistogram()
        self.waits = RollingStats()
        self.stale = 0
        self.backend_failures = 0
        self._stream_of = {b.manifest.model_id: tails.bundle.manifest.model_id for b in tails.bundle.all_cuts()}
        self._lock = threading.Lock()
        self.ports = {robot: self._port(robot) for robot in robots}
        self.batcher: FairBatcher[Queued] = FairBatcher(list(self.ports))
        self.workers = workers
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"tail_batches_{n}", daemon=True) for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def _port(self, robot: str) -> RobotPort:
        prefix = f"{robot.rstrip('/')}/" if robot else ""
        subscription = self.node.features_subscription(
            f"{prefix}splitcomp/features", lambda msg: self.on_features(robot, msg)
        )
        own = self.node.get_fully_qualified_name()
        health = NodeHealth(f"splitcomp: {own} robot {robot or '(own namespace)'}")
        health.counts.update(lost=0, stale=0)
        return RobotPort(
            robot,
            subscription.topic_name,
            health,
            Rejects(health, self.node.get_logger()),
            SequenceGaps(),
            InterFrameTail(self.tails, MAX_SENDERS_PER_ROBOT, self.reference_frames),
            self.node.answer_publisher(prefix),
            self.node.ack_publisher(prefix),
        )

    def on_features(self, robot: str, msg: SplitFeatures) -> None:
        """Executor thread: count, check, decode and acknowledge the frame, then queue it for the worker."""
        started = time.perf_counter()
        port = self.ports[robot]
        with self._lock:
            self.node.health.received()
            port.health.received()
            stream = self._stream_of.get(msg.model_id, msg.model_id)
            seen = port.gaps.observe(msg.header.frame_id, stream, msg.sequence)
            port.health.counts["lost"] += seen.lost
            sender = sender_key(port.topic, msg.header.frame_id, stream)
            decoded, reason = port.rejects.attempt(
                f"features #{msg.sequence} from robot {clip_text(robot, 60)!r}",
                lambda: port.frames.decode(
                    sender,
                    msg.sequence,
                    msg.reference_sequence,
                    msg.cut_id,
                    msg.model_id,
                    [tensor_from_msg(t) for t in msg.tensors],
                ),
            )
        port.acknowledge(ack_msg(msg, reason, self.reference_frames, (time.perf_counter() - started) * 1e3))
        if decoded is None:
            return
        stale = self.batcher.put(
            robot, msg.cut_id, Queued(msg, dataclasses.replace(decoded, image_size=image_size(msg)))
        )
        if stale is not None:
            with self._lock:
                self.stale += 1
                port.health.counts["stale"] += 1

    def _work(self) -> None:
        while not self._stop.is_set():
            batch = self.batcher.next_batch(self.max_batch, self.wait_s)
            if batch:
                try:
                    self._serve(batch)
                finally:
                    self.batcher.done(batch)  # only now may the batch's robots' next frames go to a worker

    def _serve(self, batch: list[Pending[Queued]]) -> None:
        started = time.monotonic()
        pipeline = self.tails.pipeline(batch[0].item.msg.cut_id)
        try:
            results: list[TailResult | FeaturesRejected] = pipeline.answer_batch([p.item.decoded for p in batch])
        except BackendUnavailable as exc:
            self._backend_failed(exc, batch)
            return
        except Exception as exc:  # a bug in a run: its frames are counted, the worker serves on
            results = [FeaturesRejected("internal_error", repr(exc)) for _ in batch]
        self._backend_ok()
        now = self.node.get_clock().now()
        with self._lock:
            self.histogram.add([p.robot for p in batch])
            for pending in batch:
                self.waits.add("queue_wait_ms", (started - pending.queued_at) * 1e3)
        for pending, result in zip(batch, results):
            self._answer(self.ports[pending.robot], pending.item.msg, result, now)

    def _answer(self, port: RobotPort, msg: SplitFeatures, result: TailResult | FeaturesRejected, now: Time) -> None:
        if isinstance(result, FeaturesRejected):
            with self._lock:
                port.rejects.run(f"features #{msg.sequence} from robot {port.name!r}", _raiser(result))
            return
        latency_ms = (now - Time.from_msg(msg.header.stamp, clock_type=now.clock_type)).nanoseconds / 1e6
        out = answer_msg(msg, result, latency_ms)
        port.publish(out)
        with self._lock:
            port.health.published()
            self.node.health.published()
            port.health.stages.add("latency_ms", latency_ms)
            port.health.stages.add("tail_ms", result.tail_ms)

    def _backend_failed(self, exc: BackendUnavailable, batch: list[Pending[Queued]]) -> None:
        with self._lock:
            self.backend_failures += len(batch)
            for pending in batch:
                self.ports[pending.robot].health.rejected(exc.reason)
            self.node.health.errors["backend"] = f"{exc.reason}: {clip_text(exc, 200)}"
        self.node.get_logger().error(
            f"dropped {len(batch)} frame(s), {exc.reason}: {clip_text(exc)}", throttle_duration_sec=THROTTLE_S
        )

    def _backend_ok(self) -> None:
        if "backend" in self.node.health.errors:
            with self._lock:
                self.node.health.errors.pop("backend", None)
            self.node.get_logger().info("the inference backend answers again")

    def statuses(self) -> list:
        """The tail's own status (batches, queue waits, backend) and one per robot (its share of the frames)."""
        with self._lock:
            fields = self.node.health.fields
            fields["batch_histogram"] = self.histogram.text()
            fields["max_batch"] = str(self.max_batch)
            fields["inference_workers"] = str(self.workers)
            fields["robots"] = str(len(self.ports))
            fields["stale"] = str(self.stale)
            fields["backend_dropped"] = str(self.backend_failures)
            fields["reference_senders"] = str(sum(port.frames.senders() for port in self.ports.values()))
            for name, value in zip(("p50", "p95"), self.waits.percentiles("queue_wait_ms") or ()):
                fields[f"queue_wait_ms.{name}"] = f"{value:.3f}"
            statuses = [self.node.health.to_status()]
            for port in self.ports.values():
                port.health.fields["batch_share"] = f"{self.histogram.share(port.name):.3f}"
                port.health.fields["topic"] = port.topic
                statuses.append(port.health.to_status())
        return statuses

    def close(self) -> None:
        self._stop.set()
        self.batcher.close()
        for worker in self._workers:
            worker.join(timeout=5.0)


def _raiser(error: FeaturesRejected) -> Callable[[], None]:
    def step() -> None:
        raise error

    return step

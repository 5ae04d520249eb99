"""tail_node: quantized cut tensors in (splitcomp/features), classifications out.

Each message is checked against the bundle before it is decoded; a rejected message is counted
by reason in /diagnostics and logged (throttled), and the node goes on serving the next one.
Messages that never arrived (the subscription's queue overflowed, the network dropped them) are
counted as `lost` from gaps in each sender's sequence numbers (see splitcomp_core.sequence).

With a multi-cut bundle every cut's tail is loaded at start-up and each message is answered by the
cut its cut_id names, so the head may switch cuts between any two frames.

Every message received is acknowledged on splitcomp/ack (splitcomp_msgs/FeaturesAck: decoded,
missing_reference or rejected) as soon as it is checked and decoded, before the tail's network runs: the
head picks its P-frames' references from the frames acknowledged as decoded. A P-frame
(reference_sequence > 0) is decoded only against exactly the frame it names, one of the last
`reference_frames` frames the tail decoded from that sender (splitcomp_core.references); a sender is the
topic it publishes on, its camera's frame_id and its bundle's stream. Otherwise it is rejected as
`missing_reference`, and the head sends a key frame once it hears.

With `robots` (a list of namespaces) one tail serves a fleet, and with backend triton its network runs on a
Triton server: see splitcomp_tail_node.fleet (per-robot topics and diagnostics, fair batches on a worker thread).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import TYPE_CHECKING

from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidTopicNameException
from rclpy.time import Time

from splitcomp_core.batching import FLEET_INTRA_OP_THREADS
from splitcomp_core.codec import DEFAULT_MAX_ELEMENTS
from splitcomp_core.cuts import TailCuts
from splitcomp_core.errors import SplitcompError
from splitcomp_core.keyframes import DEFAULT_REFERENCE_FRAMES, MAX_REFERENCE_FRAMES
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import SequenceGaps, sender_key
from splitcomp_core.tail import TailResult
from splitcomp_core.triton_session import TritonSession
from splitcomp_msgs.msg import Classification, Detections, FeaturesAck, SplitFeatures
from splitcomp_ros.messages import ack_msg, answer_msg, image_size, tensor_from_msg
from splitcomp_ros.node_support import (
    RUNTIME_PARAMS,
    NodeHelp,
    Param,
    RuntimeParams,
    SplitcompNode,
    StartupError,
    declare_params,
    declare_runtime,
    run_node,
)
from splitcomp_ros.qos import FEATURES_RELIABILITY_PARAM, ack_qos, features_qos
from splitcomp_ros.rejects import THROTTLE_S, clip_text
from splitcomp_tail_node.fleet import (
    BACKENDS,
    DYNAMIC_BATCH_COMMAND,
    FLEET_PARAMS,
    MAX_ROBOTS,
    FleetTail,
    triton_models,
)

try:
    from vision_msgs.msg import Classification as VisionClassification
    from vision_msgs.msg import ObjectHypothesis
except ImportError:
    VisionClassification = None
try:
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose
except ImportError:
    Detection2DArray = None

if TYPE_CHECKING:
    from rclpy.publisher import Publisher
    from rclpy.subscription import Subscription

TAIL_PARAMS = (
    Param("top_k", 5, "How many classes to publish, best first.", int_range=(1, 1000)),
    Param(
        "max_elements",
        DEFAULT_MAX_ELEMENTS,
        "Largest tensor (elements) a message may ask the tail to allocate.",
        read_only=True,
        int_range=(1, 2**31 - 1),
    ),
    Param(
        "publish_vision_msgs",
        VisionClassification is not None,
        "Also publish vision_msgs/Classification on splitcomp/vision_classification (a detection bundle: "
        "vision_msgs/Detection2DArray on splitcomp/vision_detections).",
        read_only=True,
        default_text="true when vision_msgs imports",
    ),
    FEATURES_RELIABILITY_PARAM,
    Param(
        "reference_frames",
        DEFAULT_REFERENCE_FRAMES,
        "Inter-frame coding: how many decoded frames per sender the tail keeps as references (the head refers "
        "to none further back; its acknowledgements say how many).",
        read_only=True,
        int_range=(1, MAX_REFERENCE_FRAMES),
    ),
)


# A fleet tail (robots, or backend triton) defaults to its own thread count: its inference workers use the cores.
TAIL_RUNTIME_PARAMS = tuple(
    dataclasses.replace(
        p, default_text=f"{p.default}; a fleet tail (robots, or backend triton): {FLEET_INTRA_OP_THREADS}"
    )
    if p.name == "intra_op_threads"
    else p
    for p in RUNTIME_PARAMS
)

HELP = NodeHelp(
    "splitcomp_tail_node",
    "tail_node",
    "Quantized cut tensors (splitcomp/features) in, checked against the bundle; the bundle's tail, top-k\n"
    "classes out on splitcomp/classification (a detection bundle: boxes on splitcomp/detections); health\n"
    "(rejects by reason, lost messages) on /diagnostics.",
    (*TAIL_RUNTIME_PARAMS, *TAIL_PARAMS, *FLEET_PARAMS),
)


class TailNode(SplitcompNode):
    def __init__(self) -> None:
        super().__init__("tail_node", HELP.params)
        params = declare_params(self, (*TAIL_PARAMS, *FLEET_PARAMS))
        fleet = bool(params["robots"]) or params["backend"] == "triton"
        runtime = declare_runtime(self, {"intra_op_threads": FLEET_INTRA_OP_THREADS} if fleet else None)
        vision = params["publish_vision_msgs"]
        if vision and VisionClassification is None:
            raise StartupError("tail_node: publish_vision_msgs is true but vision_msgs is not installed")
        if params["backend"] not in BACKENDS:
            raise StartupError(f"tail_node: backend {params['backend']!r} is not one of {', '.join(BACKENDS)}")
        self._vision_on = vision
        self._detects = runtime.bundle.manifest.task == "detection"
        self._reliability = params["features_reliability"]
        self.tails = self._load_tails(runtime, params)
        provider = self.tails.pipelines[runtime.bundle.cut_id].session.provider
        self.report_model(runtime.bundle, provider)
        self.health.fields["backend"] = params["backend"]
        self._gaps = SequenceGaps()
        self.health.counts["lost"] = 0
        if self._detects:
            self.health.counts["dropped_boxes"] = 0
        self._cut_counts: collections.Counter[str] = collections.Counter()
        self._last_cut = ""
        # The head numbers its frames once across cuts: a multi-cut bundle's cuts are one sender's stream.
        self._stream_of = {b.manifest.model_id: runtime.bundle.manifest.model_id for b in runtime.bundle.all_cuts()}
        self.fleet: FleetTail | None = None
        robots = self._robots(params["robots"])
        if robots or params["backend"] == "triton":
            wait_s, workers = params["batch_wait_ms"] / 1e3, params["inference_workers"]
            self.fleet = FleetTail(
                self, self.tails, robots or [""], params["max_batch"], wait_s, workers, params["reference_frames"]
            )
            self._say_how_it_batches(params["max_batch"])
        else:
            self._publish = self.answer_publisher("")
            self.frames = InterFrameTail(self.tails, frames=params["reference_frames"])
            self._ack = self.ack_publisher("")
            self._topic = self.features_subscription("splitcomp/features", self._on_features).topic_name
        self.add_on_set_parameters_callback(self._on_parameters)
        self.get_logger().info(
            f"tail ready: model {runtime.bundle.manifest.model_id[:19]}, provider {provider}"
            + (f", cuts {list(self.tails.pipelines)}" if runtime.bundle.cuts else "")
            + (f", robots {robots}" if robots else "")
            + (f", {self._parallelism(runtime, params)}" if self.fleet is not None else "")
        )

    def _load_tails(self, runtime: RuntimeParams, params: dict) -> TailCuts:
        """Every cut's tail: ONNX Runtime sessions, or with backend triton one Triton model per cut."""
        options: dict = {"top_k": params["top_k"], "max_elements": params["max_elements"]}
        if params["backend"] == "triton":
            models = triton_models(runtime.bundle, params["triton_model"])
            timeout = params["triton_timeout_s"]
            options["batch_any"] = True
        try:
            if params["backend"] == "triton":
                sessions = {cut: TritonSession(params["triton_url"], m, timeout) for cut, m in models.items()}
                self._warn_unless_ready(sessions)
                return TailCuts(runtime.bundle, sessions=sessions, **options)
            return TailCuts(
                runtime.bundle,
                providers=runtime.providers,
                allow_cpu_fallback=runtime.allow_cpu_fallback,
                intra_op_threads=runtime.intra_op_threads,
                **options,
            )
        except SplitcompError as exc:
            raise StartupError(f"tail_node: {exc}") from exc

    def _parallelism(self, runtime: RuntimeParams, params: dict) -> str:
        """How the fleet tail runs inference, for the start-up line; ONNX Runtime's threads also go to /diagnostics
        (the workers are the fleet's own field)."""
        text = f"inference_workers {params['inference_workers']}"
        if params["backend"] != "onnxruntime":
            return text
        threads = runtime.intra_op_threads or 0
        self.health.fields["intra_op_threads"] = str(threads)
        return text + f", intra_op_threads {threads}" + (" (ONNX Runtime's default)" if threads == 0 else "")

    def _warn_unless_ready(self, sessions: dict[str, TritonSession]) -> None:
        for session in sessions.values():
            if not session.ready():
                self.get_logger().warning(
                    f"{session.provider}: the server or the model is not ready yet; frames are dropped and "
                    f"counted until it is"
                )

    def _robots(self, robots: list) -> list[str]:
        names = [str(r).strip() for r in robots]
        if len(names) > MAX_ROBOTS or len(set(names)) != len(names) or any(n in ("", "/") for n in names):
            raise StartupError(
                f"tail_node: robots must be at most {MAX_ROBOTS} distinct, non-empty namespaces, got {robots[:8]}"
            )
        return names

    def _say_how_it_batches(self, asked: int) -> None:
        assert self.fleet is not None
        if asked > 1 and self.fleet.max_batch == 1:
            self.get_logger().warning(
                f"the bundle's tail takes batch 1 only: serving one frame at a time (max_batch {asked} unused); "
                f"make a batchable bundle with: {DYNAMIC_BATCH_COMMAND}"
            )

    def features_subscription(self, topic: str, callback) -> Subscription:
        """The features subscription of one sender (a fleet robot's, or the single sender's)."""
        try:
            return self.create_subscription(SplitFeatures, topic, callback, features_qos(self._reliability))
        except (InvalidTopicNameException, ValueError) as exc:
            raise StartupError(f"tail_node: cannot subscribe to {topic!r}: {exc}") from exc

    def ack_publisher(self, prefix: str):
        """A function that publishes one acknowledgement on `<prefix>splitcomp/ack`."""
        return self.create_publisher(FeaturesAck, f"{prefix}splitcomp/ack", ack_qos()).publish

    def answer_publisher(self, prefix: str):
        """A function that publishes one answer on `<prefix>splitcomp/classification` (and vision_classification),
        or for a detection bundle on `<prefix>splitcomp/detections` (and vision_detections)."""
        if self._detects:
            return self._detections_publisher(prefix)
        publisher = self.create_publisher(Classification, f"{prefix}splitcomp/classification", 10)
        vision = (
            self.create_publisher(VisionClassification, f"{prefix}splitcomp/vision_classification", 10)
            if self._vision_on
            else None
        )

        def publish(out: Classification) -> None:
            publisher.publish(out)
            if vision is not None:
                self._publish_vision(vision, out)

        return publish

    def _detections_publisher(self, prefix: str):
        publisher = self.create_publisher(Detections, f"{prefix}splitcomp/detections", 10)
        vision = (
            self.create_publisher(Detection2DArray, f"{prefix}splitcomp/vision_detections", 10)
            if self._vision_on and Detection2DArray is not None
            else None
        )

        def publish(out: Detections) -> None:
            publisher.publish(out)
            if vision is not None:
                vision.publish(_vision_detections(out))

        return publish

    def _on_features(self, msg: SplitFeatures) -> None:
        started = time.perf_counter()
        self.health.received()
        stream = self._stream_of.get(msg.model_id, msg.model_id)
        self._count_lost(msg, stream)
        sender = sender_key(self._topic, msg.header.frame_id, stream)
        what = f"features #{msg.sequence}"
        decoded, reason = self.rejects.attempt(
            what,
            lambda: self.frames.decode(
                sender,
                msg.sequence,
                msg.reference_sequence,
                msg.cut_id,
                msg.model_id,
                [tensor_from_msg(t) for t in msg.tensors],
            ),
        )
        self._ack(ack_msg(msg, reason, self.frames.frames, (time.perf_counter() - started) * 1e3))
        if decoded is None:
            return
        sized = dataclasses.replace(decoded, image_size=image_size(msg))
        result = self.rejects.run(what, lambda: self.tails.pipeline(msg.cut_id).answer(sized))
        if result is None:
            return
        self._last_cut = msg.cut_id
        self._cut_counts[msg.cut_id] += 1
        now = self.get_clock().now()
        latency_ms = (now - Time.from_msg(msg.header.stamp, clock_type=now.clock_type)).nanoseconds / 1e6
        out = answer_msg(msg, result, latency_ms)
        self._publish(out)
        self.health.published()
        self._record(result, out)

    def _count_lost(self, msg: SplitFeatures, stream: str) -> None:
        seen = self._gaps.observe(msg.header.frame_id, stream, msg.sequence)
        if seen.lost:
            self.health.counts["lost"] += seen.lost
            self.get_logger().warning(
                f"lost {seen.lost} message(s) before #{msg.sequence} from {self._sender(msg)}",
                throttle_duration_sec=THROTTLE_S,
            )
        elif seen.restarted:
            self.health.counts["sequence_restarts"] += 1
            self.get_logger().info(
                f"{self._sender(msg)} starts a new sequence at #{msg.sequence} (was #{seen.previous}): "
                f"a restarted head, not a loss",
                throttle_duration_sec=THROTTLE_S,
            )

    @staticmethod
    def _sender(msg: SplitFeatures) -> str:
        return f"frame_id {clip_text(msg.header.frame_id, 60)!r}, model_id {clip_text(msg.model_id, 80)!r}"

    def _record(self, result: TailResult, out: Classification | Detections) -> None:
        if result.dropped_boxes:
            self.health.counts["dropped_boxes"] += result.dropped_boxes
        stages = self.health.stages
        stages.add("decode_ms", result.decode_ms)
        stages.add("tail_ms", result.tail_ms)
        stages.add("post_ms", result.post_ms)
        stages.add("head_total_ms", out.head_ms)
        stages.add("latency_ms", out.latency_ms)
        stages.add("bytes_per_frame", result.feature_bytes)

    def _publish_vision(self, publisher: Publisher, out: Classification) -> None:
        vision = VisionClassification()
        vision.header = out.header
        vision.results = [ObjectHypothesis(class_id=r.label, score=float(r.score)) for r in out.results]
        publisher.publish(vision)

    def _on_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "top_k":
                if p.value < 1:
                    return SetParametersResult(successful=False, reason="top_k must be >= 1")
                self.tails.set_top_k(p.value)
        return SetParametersResult(successful=True)

    def refresh_health(self) -> None:
        """The cut of the last answered message, and, for a multi-cut bundle, how many frames each cut answered."""
        if self.fleet is not None:
            return
        self.health.fields["cut_id"] = self._last_cut
        self.health.fields["reference_senders"] = str(self.frames.senders())
        if self.tails.bundle.cuts:
            self.health.fields.update({f"frames.{cut}": str(n) for cut, n in self._cut_counts.items()})

    def diagnostic_statuses(self) -> list:
        return self.fleet.statuses() if self.fleet is not None else super().diagnostic_statuses()

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()


def _vision_detections(out: Detections):
    """The same boxes as vision_msgs/Detection2DArray (centre and size, one hypothesis each, labelled)."""
    array = Detection2DArray()
    array.header = out.header
    for d in out.detections:
        box = Detection2D()
        box.header = out.header
        box.bbox.center.position.x = float(d.x + d.width / 2)
        box.bbox.center.position.y = float(d.y + d.height / 2)
        box.bbox.size_x, box.bbox.size_y = float(d.width), float(d.height)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = d.label, float(d.score)
        box.results = [hypothesis]
        array.detections.append(box)
    return array


def main(args=None) -> int:
    return run_node(TailNode, args, HELP)


if __name__ == "__main__":
    raise SystemExit(main())

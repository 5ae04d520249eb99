"""tail_node: quantized cut tensors in (splitcomp/features), classifications out.

Each message is checked against the bundle before it is decoded; a rejected message is counted
by reason in /diagnostics and logged (throttled), and the node goes on serving the next one.
Messages that never arrived (the subscription's queue overflowed, the network dropped them) are
counted as `lost` from gaps in each sender's sequence numbers (see splitcomp_core.sequence).

With a multi-cut bundle every cut's tail is loaded at start-up and each message is answered by the
cut its cut_id names, so the head may switch cuts between any two frames.

A P-frame (reference_sequence > 0) is decoded only against exactly the frame it names, which the tail
keeps per sender (splitcomp_core.references); a sender is the topic it publishes on, its camera's
frame_id and its bundle's stream. Otherwise it is rejected as `missing_reference` until that sender's
next key frame.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from rcl_interfaces.msg import SetParametersResult
from rclpy.time import Time

from splitcomp_core.codec import DEFAULT_MAX_ELEMENTS
from splitcomp_core.cuts import TailCuts
from splitcomp_core.errors import SplitcompError
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import SequenceGaps, sender_key
from splitcomp_core.tail import TailResult
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.messages import classification_msg, tensor_from_msg
from splitcomp_ros.node_support import (
    RUNTIME_PARAMS,
    NodeHelp,
    Param,
    SplitcompNode,
    StartupError,
    declare_params,
    declare_runtime,
    run_node,
)
from splitcomp_ros.qos import features_qos
from splitcomp_ros.rejects import THROTTLE_S, clip_text

try:
    from vision_msgs.msg import Classification as VisionClassification
    from vision_msgs.msg import ObjectHypothesis
except ImportError:
    VisionClassification = None

if TYPE_CHECKING:
    from rclpy.publisher import Publisher

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
        "Also publish vision_msgs/Classification on splitcomp/vision_classification.",
        read_only=True,
        default_text="true when vision_msgs imports",
    ),
)


HELP = NodeHelp(
    "splitcomp_tail_node",
    "tail_node",
    "Quantized cut tensors (splitcomp/features) in, checked against the bundle; the bundle's tail, top-k\n"
    "classes out on splitcomp/classification; health (rejects by reason, lost messages) on /diagnostics.",
    (*RUNTIME_PARAMS, *TAIL_PARAMS),
)


class TailNode(SplitcompNode):
    def __init__(self) -> None:
        super().__init__("tail_node", HELP.params)
        runtime = declare_runtime(self)
        params = declare_params(self, TAIL_PARAMS)
        top_k, max_elements, vision = params["top_k"], params["max_elements"], params["publish_vision_msgs"]
        if vision and VisionClassification is None:
            raise StartupError("tail_node: publish_vision_msgs is true but vision_msgs is not installed")
        try:
            self.tails = TailCuts(
                runtime.bundle,
                providers=runtime.providers,
                allow_cpu_fallback=runtime.allow_cpu_fallback,
                top_k=top_k,
                max_elements=max_elements,
                intra_op_threads=runtime.intra_op_threads,
            )
        except SplitcompError as exc:
            raise StartupError(f"tail_node: {exc}") from exc
        provider = self.tails.pipelines[runtime.bundle.cut_id].session.provider
        self.report_model(runtime.bundle, provider)
        self._gaps = SequenceGaps()
        self.health.counts["lost"] = 0
        self._cut_counts: collections.Counter[str] = collections.Counter()
        self._last_cut = ""
        # The head numbers its frames once across cuts: a multi-cut bundle's cuts are one sender's stream.
        self._stream_of = {b.manifest.model_id: runtime.bundle.manifest.model_id for b in runtime.bundle.all_cuts()}
        self._publisher = self.create_publisher(Classification, "splitcomp/classification", 10)
        self._vision = (
            self.create_publisher(VisionClassification, "splitcomp/vision_classification", 10) if vision else None
        )
        self.frames = InterFrameTail(self.tails)
        subscription = self.create_subscription(SplitFeatures, "splitcomp/features", self._on_features, features_qos())
        self._topic = subscription.topic_name
        self.add_on_set_parameters_callback(self._on_parameters)
        self.get_logger().info(
            f"tail ready: model {runtime.bundle.manifest.model_id[:19]}, provider {provider}"
            + (f", cuts {list(self.tails.pipelines)}" if runtime.bundle.cuts else "")
        )

    def _on_features(self, msg: SplitFeatures) -> None:
        self.health.received()
        stream = self._stream_of.get(msg.model_id, msg.model_id)
        self._count_lost(msg, stream)
        sender = sender_key(self._topic, msg.header.frame_id, stream)
        result = self.rejects.run(
            f"features #{msg.sequence}",
            lambda: self.frames(
                sender,
                msg.sequence,
                msg.reference_sequence,
                msg.cut_id,
                msg.model_id,
                [tensor_from_msg(t) for t in msg.tensors],
            ),
        )
        if result is None:
            return
        self._last_cut = msg.cut_id
        self._cut_counts[msg.cut_id] += 1
        now = self.get_clock().now()
        latency_ms = (now - Time.from_msg(msg.header.stamp, clock_type=now.clock_type)).nanoseconds / 1e6
        out = classification_msg(msg, result, latency_ms)
        self._publisher.publish(out)
        if self._vision is not None:
            self._publish_vision(self._vision, out)
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

    def _record(self, result: TailResult, out: Classification) -> None:
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
        self.health.fields["cut_id"] = self._last_cut
        self.health.fields["reference_senders"] = str(self.frames.senders())
        if self.tails.bundle.cuts:
            self.health.fields.update({f"frames.{cut}": str(n) for cut, n in self._cut_counts.items()})


def main(args=None) -> int:
    return run_node(TailNode, args, HELP)


if __name__ == "__main__":
    raise SystemExit(main())

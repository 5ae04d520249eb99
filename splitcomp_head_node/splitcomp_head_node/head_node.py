"""head_node: camera frames in, quantized cut tensors out (splitcomp/features).

Frames are taken newest-first: the subscription callback only parks the latest frame, and one
worker runs the head on whatever is newest when it is free, so a slow model drops stale frames
(counted in diagnostics) instead of building a queue and adding latency. A frame that claims more
than max_image_pixels is refused before it is decoded or converted, and the status goes WARN when
nobody has subscribed to splitcomp/features for a while.

With a multi-cut bundle every cut's head is loaded at start-up and `bandwidth_mbps` picks the cut:
a number selects the cut whose range holds it from the next frame on; `auto` follows the link rate
that the round trips of the head's own frames show (it listens to the tail's acknowledgements on
splitcomp/ack, which come whatever the tail publishes as its answer).

With `keyframe_interval` N > 0 the head codes frames as differences to an earlier frame (P-frames), with a
key frame every N frames, and listens to splitcomp/ack whatever the bundle. With `reference: acknowledged`
(the default) a P-frame refers to the newest frame the tail has acknowledged as decoded, so a lost message
costs only itself; with `previous` it refers to the frame sent just before, and a loss ends the chain until
the next key frame. A `missing_reference` acknowledgement, or `keyframe_timeout_s` without any, makes the
next frame a key frame (splitcomp_core.keyframes decides; this node only passes acknowledgements and
parameters on). P-frames only save bytes through a compressing codec: with `codec: none` the head warns.
"""

from __future__ import annotations

import time
from typing import TypeAlias

from rcl_interfaces.msg import SetParametersResult
from rclpy.subscription import Subscription
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image

from splitcomp_core.codec import payload_bytes
from splitcomp_core.cuts import HeadCuts, switcher_for
from splitcomp_core.errors import SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.images import DEFAULT_MAX_IMAGE_PIXELS
from splitcomp_core.keyframes import (
    DEFAULT_TIMEOUT_S,
    MAX_INTERVAL,
    MAX_REFERENCE_FRAMES,
    REFERENCE_MODES,
    InterFrameHead,
    KeyframeSchedule,
)
from splitcomp_core.link import parse_bandwidth
from splitcomp_msgs.msg import FeaturesAck, SplitFeatures
from splitcomp_ros.diagnostics import NO_INPUT_WARN_S
from splitcomp_ros.encoder_params import ENCODER_PARAM_SPECS, ENCODER_PARAMS, declare_encoder, encoder_changes
from splitcomp_ros.images import compressed_to_bgr, image_to_array
from splitcomp_ros.latest_frame import LatestFrameWorker
from splitcomp_ros.messages import ACK_STATUS_NAMES, features_msg, stamp_key
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
from splitcomp_ros.qos import FEATURES_RELIABILITY_PARAM, INPUT_QOS_CHOICES, ack_qos, features_qos, input_qos
from splitcomp_ros.rejects import THROTTLE_S, clip_text

Frame: TypeAlias = Image | CompressedImage
FEATURES_TOPIC = "splitcomp/features"
ACK_TOPIC = "splitcomp/ack"
NO_GAIN_WARNING = (
    "keyframe_interval > 0 with codec none: a P-frame's differences pack to as many bytes as a key frame's codes; "
    "set codec zstd (or entropy) to save bytes"
)
NO_SUBSCRIBER_WARN_S = NO_INPUT_WARN_S
HEAD_PARAMS = (
    Param(
        "bandwidth_mbps",
        "auto",
        "Link rate in Mbit/s that picks the cut of a multi-cut bundle, or auto: estimated from the frames' "
        "round trips.",
        dynamic_typing=True,
    ),
    Param(
        "keyframe_interval",
        0,
        "Inter-frame coding: a key frame every N frames, the others coded as differences to an earlier frame "
        "(P-frames, see reference); 0 = off (every frame a key frame).",
        int_range=(0, MAX_INTERVAL),
    ),
    Param(
        "reference",
        "acknowledged",
        "What a P-frame is coded against: acknowledged = the newest frame the tail acknowledged as decoded (a lost "
        "message costs only itself); previous = the frame sent just before (a loss ends the chain).",
        choices=REFERENCE_MODES,
    ),
    Param(
        "keyframe_timeout_s",
        DEFAULT_TIMEOUT_S,
        "With keyframe_interval > 0: no acknowledgement from the tail for this many seconds while frames are "
        "outstanding makes the next frame a key frame (the tail stopped or restarted).",
        float_range=(0.01, 3600.0),
    ),
    Param(
        "max_rate_hz",
        0.0,
        "Most frames per second to process; 0 = as fast as frames come.",
        float_range=(0.0, 1000.0),
    ),
    FEATURES_RELIABILITY_PARAM,
    Param("input_qos", "sensor_data", "QoS of the image subscription.", read_only=True, choices=INPUT_QOS_CHOICES),
    Param("compressed_input", False, "Subscribe to image_raw/compressed (CompressedImage) instead.", read_only=True),
    Param(
        "max_image_pixels",
        DEFAULT_MAX_IMAGE_PIXELS,
        "Largest frame (width x height) to accept; a bigger one is refused before it is decoded or converted.",
        read_only=True,
        int_range=(1, 2**31 - 1),
    ),
)


HELP = NodeHelp(
    "splitcomp_head_node",
    "head_node",
    "Camera frames (image_raw, or image_raw/compressed) in; the bundle's head, quantized and packed, out on\n"
    "splitcomp/features; health on /diagnostics.",
    (*RUNTIME_PARAMS, *ENCODER_PARAM_SPECS, *HEAD_PARAMS),
)


class HeadNode(SplitcompNode):
    def __init__(self) -> None:
        super().__init__("head_node", HELP.params)
        runtime = declare_runtime(self)
        overrides = declare_encoder(self, runtime.bundle.manifest.quantization)
        params = declare_params(self, HEAD_PARAMS)
        max_rate, qos_name, compressed = params["max_rate_hz"], params["input_qos"], params["compressed_input"]
        bandwidth = params["bandwidth_mbps"]
        self._max_pixels = params["max_image_pixels"]
        try:
            self.heads = HeadCuts(
                runtime.bundle,
                overrides,
                providers=runtime.providers,
                allow_cpu_fallback=runtime.allow_cpu_fallback,
                intra_op_threads=runtime.intra_op_threads,
            )
            qos = input_qos(qos_name)
            self.switcher = switcher_for(runtime.bundle)
            self.switcher.set_bandwidth(parse_bandwidth(bandwidth))
            self.schedule = KeyframeSchedule(
                params["keyframe_interval"], params["keyframe_timeout_s"], params["reference"], MAX_REFERENCE_FRAMES
            )
        except (SplitcompError, ValueError) as exc:
            raise StartupError(f"head_node: {exc}") from exc
        for warning in self.heads.warnings:
            self.get_logger().warning(warning)
        self.report_model(runtime.bundle, self.pipeline.session.provider)
        self._sequence = 0
        self._frames = InterFrameHead(self.heads, self.schedule)
        self._answers: Subscription | None = None
        self._logged_cut = self.switcher.current
        self._publisher = self.create_publisher(
            SplitFeatures, FEATURES_TOPIC, features_qos(params["features_reliability"])
        )
        self._unmatched_since: float | None = time.monotonic()
        self._worker: LatestFrameWorker[Frame] = LatestFrameWorker(
            self._process, self.health.dropped, max_rate, name="head_inference"
        )
        if compressed:
            self.create_subscription(CompressedImage, "image_raw/compressed", self._on_frame, qos)
        else:
            self.create_subscription(Image, "image_raw", self._on_frame, qos)
        self._listen_to_answers()
        self.add_on_set_parameters_callback(self._on_parameters)
        self.get_logger().info(
            f"head ready: model {runtime.bundle.manifest.model_id[:19]}, cut {self.pipeline.cut_names}, "
            f"provider {self.pipeline.session.provider}, {self.pipeline.config}"
            + (f", cuts {list(self.heads.pipelines)}, bandwidth_mbps {bandwidth}" if runtime.bundle.cuts else "")
            + (
                f", keyframe_interval {self.schedule.interval}, reference {self.schedule.mode}"
                if self.schedule.listens
                else ""
            )
        )
        self._warn_if_p_frames_gain_nothing()

    @property
    def pipeline(self) -> HeadPipeline:
        """The head pipeline of the cut in use now."""
        return self.heads.pipelines[self.switcher.current]

    def _on_frame(self, msg: Frame) -> None:
        self.health.received()
        age = self.get_clock().now() - Time.from_msg(msg.header.stamp)
        self.health.stages.add("input_delay_ms", age.nanoseconds / 1e6)
        self._worker.submit(msg)

    def _process(self, msg: Frame) -> None:
        t0 = time.perf_counter()
        result = self.rejects.run("frame", lambda: self._encode(msg))
        if result is None:
            return
        out, head = result
        nbytes = payload_bytes(head.tensors)
        self.switcher.sent(out.sequence, time.monotonic(), nbytes, out.cut_id)
        self._publisher.publish(out)
        self.health.published()
        stages = self.health.stages
        stages.add("preprocess_ms", out.preprocess_ms)
        stages.add("head_ms", head.head_ms)
        stages.add("encode_ms", head.encode_ms)
        stages.add("frame_ms", (time.perf_counter() - t0) * 1e3)
        stages.add("bytes_per_frame", nbytes)

    def _encode(self, msg: Frame):
        t0 = time.perf_counter()
        if isinstance(msg, CompressedImage):
            printed: list[str] = []
            image, encoding = compressed_to_bgr(msg, self._max_pixels, printed), "bgr8"
            if printed:
                self._decoder_warned(printed)
        else:
            image, encoding = image_to_array(msg, max_pixels=self._max_pixels), msg.encoding
        convert_ms = (time.perf_counter() - t0) * 1e3
        cut_id = self.switcher.next_cut(time.monotonic())  # one cut for the whole frame: switches fall between frames
        if self.switcher.current != self._logged_cut:
            self._log_switch()
        self._sequence += 1
        head = self._frames(self._sequence, cut_id, image, encoding, time.monotonic(), stamp_key(msg.header))
        model_id = self.heads.pipelines[cut_id].bundle.manifest.model_id
        out = features_msg(msg.header, self._sequence, model_id, head, convert_ms, cut_id, image.shape[1::-1])
        return out, head

    def _log_switch(self) -> None:
        estimate = self.switcher.last_estimate
        seen = f"link about {estimate:.3g} Mbit/s" if estimate is not None else "no link estimate yet"
        self.get_logger().info(
            f"cut {self._logged_cut!r} -> {self.switcher.current!r} ({seen})", throttle_duration_sec=1.0
        )
        self._logged_cut = self.switcher.current

    def _listen_to_answers(self) -> None:
        """Subscribe to the tail's acknowledgements once a multi-cut bundle or inter-frame coding needs them."""
        if self._answers is None and (self.heads.bundle.cuts or self.schedule.listens):
            self._answers = self.create_subscription(FeaturesAck, ACK_TOPIC, self._on_ack, ack_qos())

    def _on_ack(self, msg: FeaturesAck) -> None:
        """The tail's receipt for one of our frames: its round trip tells the switcher how fast the link is, and
        its status tells the key-frame schedule what the tail holds."""
        status = ACK_STATUS_NAMES.get(msg.status, "unknown")
        ignored = None
        if self.schedule.listens:
            ignored = self.schedule.acknowledged(msg.sequence, status, stamp_key(msg.header), msg.reference_frames)
        if ignored is not None:
            self.get_logger().warning(
                f"ignored an acknowledgement of #{msg.sequence} ({ignored}): not one of this head's frames",
                throttle_duration_sec=THROTTLE_S,
            )
        if status == "decoded":
            self.switcher.answered(msg.sequence, time.monotonic(), msg.tail_ms)

    def _warn_if_p_frames_gain_nothing(self) -> None:
        """P-frames pay only through a compressing codec: say so once when they are on with codec none."""
        if self.schedule.listens and self.pipeline.config.codec == "none":
            if "keyframe_codec" not in self.health.warnings:
                self.get_logger().warning(NO_GAIN_WARNING)
            self.health.warnings["keyframe_codec"] = NO_GAIN_WARNING
        else:
            self.health.warnings.pop("keyframe_codec", None)

    def _on_parameters(self, params) -> SetParametersResult:
        changed = {p.name: p.value for p in params}
        if "max_rate_hz" in changed:
            if changed["max_rate_hz"] < 0:
                return SetParametersResult(successful=False, reason="max_rate_hz must be >= 0")
            self._worker.set_rate(changed["max_rate_hz"])
        try:
            bandwidth = parse_bandwidth(changed["bandwidth_mbps"]) if "bandwidth_mbps" in changed else None
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=clip_text(exc))
        try:
            if "keyframe_interval" in changed:
                self.schedule.set_interval(changed["keyframe_interval"])
            if "keyframe_timeout_s" in changed:
                self.schedule.set_timeout(changed["keyframe_timeout_s"])
            if "reference" in changed:
                self.schedule.set_mode(changed["reference"])
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=clip_text(exc))
        self._listen_to_answers()
        if changed.keys() & set(ENCODER_PARAMS):
            try:
                warnings = self.heads.configure(encoder_changes(changed))
            except (SplitcompError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=clip_text(exc))
            for warning in warnings:
                self.get_logger().warning(warning)
            self.get_logger().info(f"encoder now {self.pipeline.config}")
        self._warn_if_p_frames_gain_nothing()
        if "bandwidth_mbps" in changed:
            cut_id = self._logged_cut = self.switcher.set_bandwidth(bandwidth)
            self.get_logger().info(f"bandwidth_mbps {changed['bandwidth_mbps']}: cut {cut_id!r} from the next frame")
        return SetParametersResult(successful=True)

    def _decoder_warned(self, printed: list[str]) -> None:
        """A frame the decoder took although it found it corrupt: counted and logged here, not on stderr."""
        self.health.counts["decoder_warnings"] += 1
        self.get_logger().warning(f"frame decoded despite: {clip_text(printed[0])}", throttle_duration_sec=THROTTLE_S)

    def refresh_health(self) -> None:
        fields = self.health.fields
        fields["encoder"] = str(self.pipeline.config)
        fields["cut_id"] = self.switcher.current
        fields["keyframe_interval"] = str(self.schedule.interval)
        counts = self.health.counts
        counts["key_frames"], counts["p_frames"] = self.schedule.key_frames, self.schedule.p_frames
        counts["keyframe_losses"] = self.schedule.losses
        counts.update({f"acks.{status}": n for status, n in self.schedule.acks.items()})
        fields["reference"] = self.schedule.mode
        if self.heads.bundle.cuts:
            fields["model_id"] = self.pipeline.bundle.manifest.model_id
            fields["bandwidth_mbps"] = str(self.get_parameter("bandwidth_mbps").value)
            fields["cut_switches"] = str(self.switcher.switches)
            estimate = self.switcher.last_estimate
            fields["link_estimate_mbps"] = f"{estimate:.2f}" if estimate is not None else "none yet"
        self._check_subscribers()

    def _check_subscribers(self) -> None:
        """WARN once splitcomp/features has had no subscriber for NO_SUBSCRIBER_WARN_S: nobody uses our work."""
        if self._publisher.get_subscription_count() > 0:
            self._unmatched_since = None
            self.health.warnings.pop("subscribers", None)
            return
        now = time.monotonic()
        if self._unmatched_since is None:
            self._unmatched_since = now
        if now - self._unmatched_since >= NO_SUBSCRIBER_WARN_S:
            self.health.warnings["subscribers"] = f"no subscriber on {FEATURES_TOPIC}"

    def close(self) -> None:
        self._worker.close()


def main(args=None) -> int:
    return run_node(HeadNode, args, HELP)


if __name__ == "__main__":
    raise SystemExit(main())

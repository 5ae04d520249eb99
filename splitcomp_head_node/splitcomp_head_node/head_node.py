"""head_node: camera frames in, quantized cut tensors out (splitcomp/features).

Frames are taken newest-first: the subscription callback only parks the latest frame, and one
worker thread runs the head on whatever is newest when it is free. A slow model therefore drops
stale frames (counted in diagnostics) instead of building a queue and adding latency.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image

from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.errors import ImageFormatError, SplitcompError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import MODES, EncoderConfig
from splitcomp_msgs.msg import SplitFeatures
from splitcomp_ros.diagnostics import NodeHealth
from splitcomp_ros.images import compressed_to_bgr, image_to_array
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.node_support import StartupError, declare, declare_runtime, run_node
from splitcomp_ros.qos import INPUT_QOS_CHOICES, features_qos, input_qos

THROTTLE_S = 5.0
ENCODER_PARAMS = ("bits", "quantization", "clip_min", "clip_max", "codec")


class HeadNode(Node):
    def __init__(self) -> None:
        super().__init__("head_node")
        runtime = declare_runtime(self)
        # Unset encoder parameters take the bundle's defaults (calibrate records what it measured).
        defaults = runtime.bundle.manifest.quantization
        bits = declare(self, "bits", defaults.bits, "Bits per code: 1..8 quantize, 16/32 send raw floats.")
        mode = declare(self, "quantization", defaults.mode, "Ranges for quantization.", choices=MODES)
        clip_min = declare(self, "clip_min", float(defaults.clip_min),
                           "Lower end of the fixed clip range (quantization=clip).")
        clip_max = declare(self, "clip_max", float(defaults.clip_max),
                           "Upper end of the fixed clip range (quantization=clip).")
        codec = declare(self, "codec", defaults.codec, "Entropy coder after bit packing.",
                        choices=CODEC_NAMES)
        self._min_period = 0.0
        max_rate = declare(
            self, "max_rate_hz", 0.0, "Most frames per second to process; 0 = as fast as frames come.",
            float_range=(0.0, 1000.0),
        )
        qos_name = declare(self, "input_qos", "sensor_data", "QoS of the image subscription.", read_only=True,
                           choices=INPUT_QOS_CHOICES)
        compressed = declare(
            self, "compressed_input", False, "Subscribe to image_raw/compressed (CompressedImage) instead.",
            read_only=True,
        )

        bundle = runtime.bundle
        try:
            self.pipeline = HeadPipeline(
                bundle,
                EncoderConfig(bits, mode, clip_min, clip_max, codec),
                providers=runtime.providers,
                allow_cpu_fallback=runtime.allow_cpu_fallback,
                intra_op_threads=runtime.intra_op_threads,
            )
            qos = input_qos(qos_name)
        except SplitcompError as exc:
            raise StartupError(f"head_node: {exc}") from exc
        for warning in self.pipeline.warnings:
            self.get_logger().warning(warning)
        self._set_rate(max_rate)

        self.health = NodeHealth(f"splitcomp: {self.get_fully_qualified_name()}")
        self.health.fields.update(
            model_id=bundle.manifest.model_id,
            provider=self.pipeline.session.provider,
            bundle=str(bundle.path),
        )
        self._publisher = self.create_publisher(SplitFeatures, "splitcomp/features", features_qos())
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if compressed:
            self.create_subscription(CompressedImage, "image_raw/compressed", self._on_frame, qos)
        else:
            self.create_subscription(Image, "image_raw", self._on_frame, qos)
        self.add_on_set_parameters_callback(self._on_parameters)
        self.create_timer(1.0, self._publish_diagnostics)

        self._sequence = 0
        self._pending: Optional[object] = None
        self._wake = threading.Condition()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="head_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"head ready: model {bundle.manifest.model_id[:19]}, cut {self.pipeline.cut_names}, "
            f"provider {self.pipeline.session.provider}, {self.pipeline.config}"
        )

    def _on_frame(self, msg) -> None:
        self.health.received()
        age = self.get_clock().now() - Time.from_msg(msg.header.stamp)
        self.health.stages.add("input_delay_ms", age.nanoseconds / 1e6)
        with self._wake:
            if self._pending is not None:
                self.health.dropped()
            self._pending = msg
            self._wake.notify()

    def _work(self) -> None:
        next_slot = 0.0
        while self._running:
            with self._wake:
                while self._pending is None and self._running:
                    self._wake.wait(0.5)
                if not self._running:
                    return
            wait = next_slot - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self._wake:
                msg, self._pending = self._pending, None
            next_slot = time.monotonic() + self._min_period
            self._process(msg)

    def _process(self, msg) -> None:
        t0 = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                image, encoding = compressed_to_bgr(msg), "bgr8"
            else:
                image, encoding = image_to_array(msg), msg.encoding
            convert_ms = (time.perf_counter() - t0) * 1e3
            result = self.pipeline(image, encoding)
        except ImageFormatError as exc:
            self.health.rejected("image_format")
            self.get_logger().warning(f"skipping frame: {exc}", throttle_duration_sec=THROTTLE_S)
            return
        except SplitcompError as exc:
            self.health.rejected("inference")
            self.get_logger().error(f"head failed on a frame: {exc}", throttle_duration_sec=THROTTLE_S)
            return
        except Exception as exc:  # noqa: BLE001 - a bug on one frame must not stop the robot's perception
            self.health.rejected("internal_error")
            self.get_logger().error(f"unexpected error on a frame: {exc!r}", throttle_duration_sec=THROTTLE_S)
            return
        out = SplitFeatures()
        out.header = msg.header
        self._sequence += 1
        out.sequence = self._sequence
        out.model_id = self.pipeline.bundle.manifest.model_id
        out.tensors = [tensor_to_msg(t) for t in result.tensors]
        out.preprocess_ms = convert_ms + result.preprocess_ms
        out.head_ms = result.head_ms
        out.encode_ms = result.encode_ms
        self._publisher.publish(out)
        self.health.published()
        stages = self.health.stages
        stages.add("preprocess_ms", out.preprocess_ms)
        stages.add("head_ms", result.head_ms)
        stages.add("encode_ms", result.encode_ms)
        stages.add("frame_ms", (time.perf_counter() - t0) * 1e3)
        stages.add("bytes_per_frame", sum(len(t.data) for t in result.tensors))

    def _on_parameters(self, params) -> SetParametersResult:
        changed = {p.name: p.value for p in params}
        if "max_rate_hz" in changed:
            if changed["max_rate_hz"] < 0:
                return SetParametersResult(successful=False, reason="max_rate_hz must be >= 0")
            self._set_rate(changed["max_rate_hz"])
        if not changed.keys() & set(ENCODER_PARAMS):
            return SetParametersResult(successful=True)
        current = {name: self.get_parameter(name).value for name in ENCODER_PARAMS}
        current.update({k: v for k, v in changed.items() if k in ENCODER_PARAMS})
        config = EncoderConfig(
            current["bits"], current["quantization"], current["clip_min"], current["clip_max"], current["codec"]
        )
        try:
            warnings = self.pipeline.configure(config)
        except (SplitcompError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        for warning in warnings:
            self.get_logger().warning(warning)
        self.get_logger().info(f"encoder now {config}")
        return SetParametersResult(successful=True)

    def _set_rate(self, max_rate_hz: float) -> None:
        self._min_period = 1.0 / max_rate_hz if max_rate_hz > 0 else 0.0

    def _publish_diagnostics(self) -> None:
        self.health.fields["encoder"] = str(self.pipeline.config)
        self._diagnostics.publish(self.health.to_array(self.get_clock().now().to_msg()))

    def close(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        self._worker.join(timeout=5)


def main(args=None) -> int:
    return run_node(HeadNode, args)


if __name__ == "__main__":
    raise SystemExit(main())

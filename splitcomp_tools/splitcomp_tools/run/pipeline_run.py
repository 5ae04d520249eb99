"""Run image_source, head_node and tail_node as separate processes and watch them from a probe node.

The demo and the pipeline benchmark both use this: it starts what `pipeline.launch.py` would
(without the overlay), records camera frames, the tail's answers and diagnostics (only what
a deployment would also subscribe to), and stops everything cleanly. The answers are what the bundle's task
makes the tail publish: Classification on splitcomp/classification, or Detections on splitcomp/detections.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import rclpy
from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from splitcomp_core.bundle import load_bundle
from splitcomp_core.errors import BundleError, SplitcompError
from splitcomp_msgs.msg import Classification, Detections
from splitcomp_ros.messages import stamp_key
from splitcomp_tools.run.local_launch import NodeProcess


@dataclasses.dataclass
class Seen:
    """What the probe received: camera frames by stamp, the tail's answers (classifications or detections), the
    latest diagnostics."""

    frames: dict = dataclasses.field(default_factory=dict)
    overlay: Image | None = None
    results: list = dataclasses.field(default_factory=list)
    diagnostics: dict = dataclasses.field(default_factory=dict)


def detects(bundle: Path) -> bool:
    """Whether the bundle's tail answers boxes (task detection); a bundle that does not load is left for the
    nodes to refuse in their own words."""
    try:
        return load_bundle(bundle).manifest.task == "detection"
    except BundleError:
        return False


class PipelineRun:
    """The three nodes plus a probe; use as a context manager so processes never outlive it."""

    def __init__(
        self,
        bundle: Path,
        log_dir: Path,
        rate_hz: float,
        frame_count: int = 0,
        source: str = "generator",
        head_params: Mapping[str, object] | None = None,
        tail_params: Mapping[str, object] | None = None,
        watch_frames: bool = True,
        preload: int = 0,
        overlay: bool = False,
        on_result: Callable[[Classification | Detections], None] | None = None,
        prefix: Callable[[str], Sequence[str]] = lambda executable: (),
    ) -> None:
        """`prefix(executable)` is put before each node's command (the test bed: which namespace it runs in)."""
        self.bundle, self.log_dir = Path(bundle), Path(log_dir)
        self.rate_hz, self.frame_count, self.source = rate_hz, frame_count, source
        self.head_params, self.tail_params = dict(head_params or {}), dict(tail_params or {})
        self.watch_frames = watch_frames
        self.preload = preload
        self.overlay = overlay
        self.on_result = on_result
        self.prefix = prefix
        self.detects = detects(self.bundle)
        self.seen = Seen()
        self._nodes: list[NodeProcess] = []
        self._logs: list = []

    def __enter__(self) -> PipelineRun:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = Path(get_package_share_directory("splitcomp_tools")) / "config"
        self._context = Context()
        rclpy.init(context=self._context)
        self.node = rclpy.create_node("splitcomp_probe", context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        if self.watch_frames:
            self.node.create_subscription(Image, "image_raw", self._on_frame, qos_profile_sensor_data)
        if self.detects:
            self.node.create_subscription(Detections, "splitcomp/detections", self._on_result, 50)
        else:
            self.node.create_subscription(Classification, "splitcomp/classification", self._on_result, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        if self.overlay:
            self.node.create_subscription(Image, "splitcomp/overlay", self._on_overlay, qos_profile_sensor_data)
        try:
            self._start(
                "splitcomp_tail_node",
                "tail_node",
                {"bundle": str(self.bundle), **self.tail_params},
                config / "tail.yaml",
            )
            self._start(
                "splitcomp_head_node",
                "head_node",
                {"bundle": str(self.bundle), **self.head_params},
                config / "head.yaml",
            )
            if self.overlay:
                self._start("splitcomp_tools", "overlay", {})
            self._wait_for_nodes(
                ("head_node", "tail_node", "overlay") if self.overlay else ("head_node", "tail_node"), timeout=60.0
            )
            self._start(
                "splitcomp_tools",
                "image_source",
                {
                    "source": self.source,
                    "rate_hz": float(self.rate_hz),
                    "count": self.frame_count,
                    "loop": True,
                    "preload": self.preload,
                    "wait_for_subscriber": True,
                },
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, package: str, executable: str, params: dict, params_file: Path | None = None) -> None:
        log = open(self.log_dir / f"{executable}.log", "w")  # noqa: SIM115 - open while the node runs
        self._logs.append(log)
        self._nodes.append(
            NodeProcess(
                package,
                executable,
                params,
                log=log,
                params_file=str(params_file) if params_file else None,
                prefix=self.prefix(executable),
            )
        )

    def _wait_for_nodes(self, names, timeout: float) -> None:
        """Both nodes are serving once their diagnostics arrive (they publish after start-up)."""
        deadline = time.monotonic() + timeout
        while not all(f"splitcomp: /{n}" in self.seen.diagnostics for n in names):
            for node in self._nodes:
                if not node.running():
                    raise SplitcompError(f"{node.name} exited during start-up; see {self.log_dir / node.name}.log")
            if time.monotonic() > deadline:
                raise SplitcompError(f"nodes did not start within {timeout:.0f} s; see the logs in {self.log_dir}")
            self._executor.spin_once(timeout_sec=0.1)

    def _on_frame(self, msg: Image) -> None:
        self.seen.frames[stamp_key(msg.header)] = msg

    def _on_overlay(self, msg: Image) -> None:
        self.seen.overlay = msg

    def _on_result(self, msg: Classification | Detections) -> None:
        self.seen.results.append(msg)
        if self.on_result:
            self.on_result(msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.seen.diagnostics[status.name] = {kv.key: kv.value for kv in status.values}

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            for node in self._nodes:
                if not node.running():
                    raise SplitcompError(f"{node.name} exited; see {self.log_dir / node.name}.log")
            self._executor.spin_once(timeout_sec=0.05)
        return True

    def __exit__(self, *exc) -> None:
        for node in reversed(self._nodes):
            node.stop()
        for log in self._logs:
            log.close()
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self._context)

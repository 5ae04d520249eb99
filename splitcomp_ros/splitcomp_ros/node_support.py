"""What every splitcomp node does the same way: parameters with descriptors, /diagnostics, rejects, start-up.

A node class derives from SplitcompNode and only wires its topics to splitcomp_core; the health
report, its timer, the reject handling and the one-line start-up refusal live here.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from splitcomp_core.bundle import Bundle, load_bundle
from splitcomp_core.errors import SplitcompError
from splitcomp_ros.diagnostics import NodeHealth
from splitcomp_ros.rejects import Rejects

DIAGNOSTICS_PERIOD_S = 1.0


class SplitcompNode(Node):
    """A Node whose NodeHealth goes out on /diagnostics once a second, with a Rejects handler for its hot path.

    Subclasses may override `refresh_health` to update fields just before each report, and `close`
    to stop their own threads; `run_node` calls `close` before the node is destroyed.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.health = NodeHealth(f"splitcomp: {self.get_fully_qualified_name()}")
        self.rejects = Rejects(self.health, self.get_logger())
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    def report_model(self, bundle: Bundle, provider: str) -> None:
        """Name the bundle, its model_id and the ONNX Runtime provider that actually runs in every report."""
        self.health.fields.update(model_id=bundle.manifest.model_id, provider=provider, bundle=str(bundle.path))

    def refresh_health(self) -> None:
        """Called before each report; the default has nothing to add."""

    def close(self) -> None:
        """Called once before the node is destroyed; the default has nothing to stop."""

    def _publish_diagnostics(self) -> None:
        self.refresh_health()
        self._diagnostics.publish(self.health.to_array(self.get_clock().now().to_msg()))


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    read_only: bool = False,
    int_range: tuple | None = None,
    float_range: tuple | None = None,
    choices: tuple | None = None,
    dynamic_typing: bool = False,
) -> Any:
    """Declare one parameter with a descriptor (so `ros2 param describe` explains it); returns its value.

    `dynamic_typing` lets a value of another type replace the default's (a number or the string "auto").
    """
    if choices:
        description = f"{description} One of: {', '.join(map(str, choices))}."
    descriptor = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=dynamic_typing)
    if int_range:
        descriptor.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    if float_range:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]), step=0.0)
        ]
    try:
        return node.declare_parameter(name, default, descriptor).value
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        raise StartupError(f"{node.get_name()}: parameter '{name}': {exc}") from exc


@dataclasses.dataclass(frozen=True)
class RuntimeParams:
    """The parameters every model-running node has: which bundle, and how ONNX Runtime runs it."""

    bundle: Bundle
    providers: list
    allow_cpu_fallback: bool
    intra_op_threads: int | None


def declare_runtime(node: Node) -> RuntimeParams:
    """Declare bundle, providers, allow_cpu_fallback and intra_op_threads, then load the bundle."""
    path = declare(node, "bundle", "", "Path of the split bundle directory (from `split`).", read_only=True)
    providers = declare(
        node,
        "providers",
        ["cuda", "cpu"],
        "ONNX Runtime execution providers in priority order (tensorrt, cuda, cpu...).",
        read_only=True,
    )
    allow_cpu = declare(
        node, "allow_cpu_fallback", True, "Run on CPU when no requested accelerator is available.", read_only=True
    )
    threads = declare(
        node,
        "intra_op_threads",
        0,
        "ONNX Runtime intra-op threads; 0 = its default.",
        read_only=True,
        int_range=(0, 256),
    )
    return RuntimeParams(load_bundle_for(node, path), list(providers), allow_cpu, threads or None)


class StartupError(SplitcompError):
    """The node cannot serve with its configuration; main() prints this and exits non-zero."""


def load_bundle_for(node: Node, path: str) -> Bundle:
    if not path:
        raise StartupError(
            f"{node.get_name()}: parameter 'bundle' is empty; pass --ros-args -p bundle:=/path/to/bundle"
        )
    try:
        return load_bundle(path)
    except SplitcompError as exc:
        raise StartupError(f"{node.get_name()}: refusing bundle: {exc}") from exc


def run_node(factory: Callable[[], Node], args: list | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C; a StartupError is one clear line and exit 2."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
    except StartupError as exc:
        print(f"[FATAL] {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if isinstance(node, SplitcompNode):
                node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0

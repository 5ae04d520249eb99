"""What both nodes do the same way: declare parameters with descriptors, and start up or refuse."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any, Callable, Optional

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from splitcomp_core.bundle import Bundle, load_bundle
from splitcomp_core.errors import SplitcompError


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    read_only: bool = False,
    int_range: Optional[tuple] = None,
    float_range: Optional[tuple] = None,
    choices: Optional[tuple] = None,
) -> Any:
    """Declare one parameter with a descriptor (so `ros2 param describe` explains it); returns its value."""
    if choices:
        description = f"{description} One of: {', '.join(map(str, choices))}."
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
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
    intra_op_threads: Optional[int]


def declare_runtime(node: Node) -> RuntimeParams:
    """Declare bundle, providers, allow_cpu_fallback and intra_op_threads, then load the bundle."""
    path = declare(node, "bundle", "", "Path of the split bundle directory (from `split`).", read_only=True)
    providers = declare(node, "providers", ["cuda", "cpu"],
                        "ONNX Runtime execution providers in priority order (tensorrt, cuda, cpu...).", read_only=True)
    allow_cpu = declare(node, "allow_cpu_fallback", True,
                        "Run on CPU when no requested accelerator is available.", read_only=True)
    threads = declare(node, "intra_op_threads", 0, "ONNX Runtime intra-op threads; 0 = its default.",
                      read_only=True, int_range=(0, 256))
    return RuntimeParams(load_bundle_for(node, path), list(providers), allow_cpu, threads or None)


class StartupError(SplitcompError):
    """The node cannot serve with its configuration; main() prints this and exits non-zero."""


def load_bundle_for(node: Node, path: str) -> Bundle:
    if not path:
        raise StartupError(f"{node.get_name()}: parameter 'bundle' is empty; pass --ros-args -p bundle:=/path/to/bundle")
    try:
        return load_bundle(path)
    except SplitcompError as exc:
        raise StartupError(f"{node.get_name()}: refusing bundle: {exc}") from exc


def run_node(factory: Callable[[], Node], args: Optional[list] = None) -> int:
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
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0

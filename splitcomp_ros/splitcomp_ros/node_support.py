"""What every splitcomp node does the same way: parameters with descriptors, /diagnostics, rejects, start-up.

A node class derives from SplitcompNode and only wires its topics to splitcomp_core; the health
report, its timer, the reject handling and the one-line start-up refusal live here. Each node lists
its parameters once, as `Param` records: the same list declares them (with descriptors) and prints
`--help`, so the two cannot drift apart. `run_node` answers --help before any node exists and
refuses, at start-up, an override of a parameter the node does not have (a typo would otherwise be
ignored silently).
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.utilities import remove_ros_args

from splitcomp_core.bundle import Bundle, load_bundle
from splitcomp_core.console import EXIT_CLOSED_PIPE, ClosedPipe, closed_pipe_is_quiet
from splitcomp_core.errors import SplitcompError
from splitcomp_ros import dds_profile
from splitcomp_ros.diagnostics import NodeHealth
from splitcomp_ros.rejects import Rejects

DIAGNOSTICS_PERIOD_S = 1.0


class SplitcompNode(Node):
    """A Node whose NodeHealth goes out on /diagnostics once a second, with a Rejects handler for its hot path.

    `params` is the node's whole Param list (what --help shows): an override of any other name is
    refused before the subclass loads anything. Subclasses may override `refresh_health` to update fields just before each report, and `close`
    to stop their own threads; `run_node` calls `close` before the node is destroyed.
    """

    def __init__(self, name: str, params: Sequence[Param]) -> None:
        super().__init__(name)
        refuse_unknown_overrides(self, params)
        self.health = NodeHealth(f"splitcomp: {self.get_fully_qualified_name()}")
        self.rejects = Rejects(self.health, self.get_logger())
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    def report_model(self, bundle: Bundle, provider: str) -> None:
        """Name the bundle, its model_id and the ONNX Runtime provider that actually runs in every report."""
        self.health.fields.update(model_id=bundle.manifest.model_id, provider=provider, bundle=str(bundle.path))

    def refresh_health(self) -> None:
        """Called before each report; the default has nothing to add."""

    def diagnostic_statuses(self) -> list[DiagnosticStatus]:
        """The statuses of each report: the node's own; a fleet tail adds one per robot."""
        return [self.health.to_status()]

    def close(self) -> None:
        """Called once before the node is destroyed; the default has nothing to stop."""

    def _publish_diagnostics(self) -> None:
        self.refresh_health()
        report = DiagnosticArray()
        report.header.stamp = self.get_clock().now().to_msg()
        report.status = self.diagnostic_statuses()
        self._diagnostics.publish(report)


@dataclasses.dataclass(frozen=True)
class Param:
    """One node parameter, as it is declared (with a descriptor) and as --help lists it.

    `default_text` is what --help says when the default is only known at run time (the bundle's).
    `dynamic_typing` lets a value of another type replace the default's (a number or the string "auto").
    """

    name: str
    default: Any
    description: str
    read_only: bool = False
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple | None = None
    default_text: str | None = None
    dynamic_typing: bool = False

    def full_description(self) -> str:
        if self.choices:
            return f"{self.description} One of: {', '.join(map(str, self.choices))}."
        return self.description

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            description=self.full_description(), read_only=self.read_only, dynamic_typing=self.dynamic_typing
        )
        if self.int_range:
            low, high = self.int_range
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        if self.float_range:
            low_f, high_f = self.float_range
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low_f), to_value=float(high_f), step=0.0)
            ]
        return descriptor

    def help_lines(self) -> list[str]:
        kind = _TYPE_NAMES.get(type(self.default), "string array" if isinstance(self.default, list) else "value")
        if self.dynamic_typing:
            kind = f"{kind} or number"
        notes = [kind]
        if self.read_only:
            notes.append("read-only")
        if self.int_range or self.float_range:
            low, high = self.int_range or self.float_range or (0, 0)
            notes.append(f"{low}..{high}")
        default = self.default_text or _ros_value(self.default)
        return [f"  {self.name} ({', '.join(notes)}), default {default}", f"      {self.full_description()}"]


_TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string"}


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def declare_param(node: Node, param: Param, default: Any = None) -> Any:
    """Declare one parameter with its descriptor (so `ros2 param describe` explains it); returns its value.

    `default` replaces `param.default` when given (defaults that come from the bundle). An empty list
    default declares a string array: rclpy would infer a byte array from `[]` and refuse a list of names.
    """
    value = param.default if default is None else default
    typed = Parameter.Type.STRING_ARRAY if isinstance(value, list) and not value else value
    try:
        declared = node.declare_parameter(param.name, typed, param.descriptor()).value
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        raise StartupError(f"{node.get_name()}: parameter '{param.name}': {exc}") from exc
    return [] if declared is None and typed is Parameter.Type.STRING_ARRAY else declared


def declare_params(node: Node, params: Sequence[Param], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declare every parameter of `params` in order; their values by name."""
    defaults = defaults or {}
    return {p.name: declare_param(node, p, defaults.get(p.name)) for p in params}


@dataclasses.dataclass(frozen=True)
class RuntimeParams:
    """The parameters every model-running node has: which bundle, and how ONNX Runtime runs it."""

    bundle: Bundle
    providers: list
    allow_cpu_fallback: bool
    intra_op_threads: int | None


RUNTIME_PARAMS = (
    Param(
        "bundle", "", "Path of the split bundle directory (from `split`).", read_only=True, default_text="(required)"
    ),
    Param(
        "providers",
        ["cuda", "cpu"],
        "ONNX Runtime execution providers in priority order (tensorrt, cuda, cpu...).",
        read_only=True,
    ),
    Param("allow_cpu_fallback", True, "Run on CPU when no requested accelerator is available.", read_only=True),
    Param("intra_op_threads", 0, "ONNX Runtime intra-op threads; 0 = its default.", read_only=True, int_range=(0, 256)),
)


def declare_runtime(node: Node, defaults: Mapping[str, Any] | None = None) -> RuntimeParams:
    """Declare RUNTIME_PARAMS (bundle, providers, allow_cpu_fallback, intra_op_threads), then load the bundle;
    `defaults` replaces their defaults by name (a fleet tail's own thread count)."""
    values = declare_params(node, RUNTIME_PARAMS, defaults)
    return RuntimeParams(
        load_bundle_for(node, values["bundle"]),
        list(values["providers"]),
        values["allow_cpu_fallback"],
        values["intra_op_threads"] or None,
    )


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


@dataclasses.dataclass(frozen=True)
class NodeHelp:
    """What `EXECUTABLE --help` prints: how to start the node, what it does, and every parameter."""

    package: str
    executable: str
    summary: str
    params: Sequence[Param]

    def text(self) -> str:
        lines = [
            f"usage: ros2 run {self.package} {self.executable} [--ros-args -p NAME:=VALUE ... --params-file FILE]",
            "",
            self.summary.strip(),
            "",
            "parameters (-p NAME:=VALUE; a name the node does not have is refused at start-up):",
        ]
        for param in self.params:
            lines.extend(param.help_lines())
        return "\n".join(lines)


def run_node(factory: Callable[[], Node], args: list | None = None, usage: NodeHelp | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C; a StartupError is one clear line and exit 2.

    Before rclpy starts, the process takes the installed Fast DDS profile unless one is exported
    (dds_profile.apply_in_process), so `ros2 run` gets what a launch file gives; one line says which.

    `--help`/`-h` prints `usage` and exits 0 before anything of ROS starts; an argument outside
    --ros-args is refused (an unknown parameter is refused by the node: refuse_unknown_overrides).
    """
    argv = list(sys.argv if args is None else args)
    own = remove_ros_args(argv)[1:]
    name = usage.executable if usage is not None else "node"
    if usage is not None and any(a in ("-h", "--help") for a in own):
        try:
            with closed_pipe_is_quiet():
                print(usage.text())
        except ClosedPipe:
            return EXIT_CLOSED_PIPE
        return 0
    if own:
        print(
            f"[FATAL] {name}: unexpected argument {own[0]!r}; set parameters with --ros-args -p NAME:=VALUE "
            f"(see {name} --help)",
            file=sys.stderr,
        )
        return 2
    profile = dds_profile.apply_in_process()  # before rclpy.init: Fast DDS reads it when the participant is made
    rclpy.init(args=argv)
    logger = rclpy.logging.get_logger(name)
    (logger.warning if profile.problem else logger.info)(profile.line)
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


def refuse_unknown_overrides(node: Node, params: Sequence[Param]) -> None:
    """Raise StartupError for a -p or params-file value of a parameter the node does not have.

    rclpy keeps such overrides and ignores them (allow_undeclared_parameters stays false), so a typo
    such as `-p sorce:=...` would run the node with its default. Called first thing in a node's
    __init__ with its Param list, before anything is loaded. rclpy offers no public accessor for the
    overrides it parsed; `_parameter_overrides` is the same attribute on Humble, Jazzy and Kilted.
    """
    known = [p.name for p in params]
    overrides = getattr(node, "_parameter_overrides", {})
    unknown = sorted(n for n in overrides if n not in known and not node.has_parameter(n))
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise StartupError(
        f"{node.get_name()}: no parameter named {', '.join(map(repr, unknown))}{hint}; "
        f"its parameters are {', '.join(known)}"
    )

"""Live (rclpy, only with --ros): the studio joins the ROS graph and passes a running pipeline to the page.

It subscribes to /diagnostics and to splitcomp/classification under the chosen namespace, as
`ros2 topic echo` would, and publishes each message as a plain dict on the Hub. Its own context and
executor thread keep it apart from the server, and it installs no signal handlers: uvicorn owns those.
"""

from __future__ import annotations

import threading
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from splitcomp_msgs.msg import Classification
from splitcomp_tools.studio.events import Hub

NODE_NAME = "splitcomp_studio"
STATUS_PREFIX = "splitcomp: "  # what every splitcomp node names its DiagnosticStatus


def normalized_namespace(namespace: str) -> str:
    """ "" or "/robot1": a namespace as node names carry it."""
    stripped = namespace.strip("/")
    return f"/{stripped}" if stripped else ""


class LiveFeed:
    """A node in `namespace` that forwards diagnostics of that namespace's nodes and their classifications."""

    def __init__(self, hub: Hub, namespace: str = "") -> None:
        self.hub = hub
        self.namespace = normalized_namespace(namespace)
        self._context = Context()
        rclpy.init(context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(NODE_NAME, namespace=self.namespace or "/", context=self._context)
        self.node.create_subscription(Classification, "splitcomp/classification", self._on_result, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="studio-live", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self._context.ok():
                self._executor.spin_once(timeout_sec=0.1)
        except ExternalShutdownException:
            return

    def _on_result(self, msg: Classification) -> None:
        self.hub.publish("classification", classification_json(msg))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            node = status.name[len(STATUS_PREFIX) :] if status.name.startswith(STATUS_PREFIX) else None
            if node is not None and node.rsplit("/", 1)[0] == self.namespace:
                self.hub.publish(
                    "diagnostics",
                    {
                        "name": node,
                        "level": ord(status.level) if isinstance(status.level, bytes) else int(status.level),
                        "message": status.message,
                        "values": {kv.key: kv.value for kv in status.values},
                    },
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self._context)


def classification_json(msg: Classification) -> dict[str, Any]:
    """A splitcomp/classification message as the page reads it: the fields `ros2 topic echo` shows."""
    return {
        "stamp": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
        "frame_id": msg.header.frame_id,
        "sequence": msg.sequence,
        "model_id": msg.model_id,
        "results": [{"class_id": r.class_id, "label": r.label, "score": r.score} for r in msg.results],
        "feature_bytes": msg.feature_bytes,
        "head_ms": msg.head_ms,
        "tail_ms": msg.tail_ms,
        "latency_ms": msg.latency_ms,
    }

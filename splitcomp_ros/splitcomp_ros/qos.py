"""QoS profiles by name, so launch files and YAML can choose them."""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from splitcomp_core.errors import SplitcompError
from splitcomp_ros.node_support import Param

INPUT_QOS_CHOICES = ("sensor_data", "reliable")
FEATURES_RELIABILITY_CHOICES = ("reliable", "best_effort")
# Both nodes take it: a best-effort tail also hears a reliable head, a reliable tail never a best-effort one.
FEATURES_RELIABILITY_PARAM = Param(
    "features_reliability",
    "reliable",
    "QoS reliability of splitcomp/features: reliable (DDS resends lost fragments) or best_effort (a lost "
    "fragment loses the message).",
    read_only=True,
    choices=FEATURES_RELIABILITY_CHOICES,
)


def input_qos(name: str) -> QoSProfile:
    """Camera input: sensor-data QoS (best effort, shallow) unless the publisher is reliable-only."""
    if name == "sensor_data":
        return qos_profile_sensor_data
    if name == "reliable":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE)
    raise SplitcompError(f"input_qos must be one of {', '.join(INPUT_QOS_CHOICES)}, got {name!r}")


def features_qos(reliability: str = "reliable") -> QoSProfile:
    """Shallow: a lost feature message costs one frame, a deep queue costs latency. Reliable by default (measured
    against best effort on the lossy test bed: docs/deployment.md); a best-effort reader matches either writer."""
    policies = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    if reliability not in policies:
        raise SplitcompError(
            f"features_reliability must be one of {', '.join(FEATURES_RELIABILITY_CHOICES)}, got {reliability!r}"
        )
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=policies[reliability])


def ack_qos() -> QoSProfile:
    """The tail's acknowledgements: small and reliable; a burst of them must not push out the newest."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20, reliability=ReliabilityPolicy.RELIABLE)

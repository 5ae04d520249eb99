"""head_node against hostile frames over DDS: decompression bombs, garbage and corrupt JPEGs, oversized raw
images, and nobody subscribing to its features."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_harness import NodeProcess, Probe, diagnostics_values
from sensor_msgs.msg import CompressedImage
from test_nodes_head import RGB, HeadHarness

from splitcomp_core.errors import ImageFormatError
from splitcomp_core.images import decode_compressed
from splitcomp_msgs.msg import SplitFeatures
from splitcomp_ros.images import array_to_image

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

RNG = np.random.default_rng(17)


def jpeg_bytes(rgb: np.ndarray = RGB) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def claims(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with a frame header that claims another size: 691 bytes can ask for 20000x20000."""
    sof = data.find(b"\xff\xc0")
    patched = bytearray(data)
    patched[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(patched)


def corrupt_scan(data: bytes, seed: int) -> bytes:
    """A JPEG whose entropy-coded data is partly garbage: libjpeg decodes it and prints a warning."""
    patched = bytearray(data)
    scan = patched.find(b"\xff\xda")
    patched[scan + 40 : scan + 90] = np.random.default_rng(seed).integers(0, 255, 50, dtype=np.uint8).tobytes()
    return bytes(patched)


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def compressed(data: bytes) -> CompressedImage:
    msg = CompressedImage(format="jpeg")
    msg.data = data
    return msg


def test_jpeg_bombs_and_garbage_are_refused_without_growing_the_head(demo_bundle, tmp_path):
    head = HeadHarness(demo_bundle, tmp_path, namespace="/bombs", compressed_input=True)
    try:
        assert head.send(compressed(jpeg_bytes())) is not None, head.node.log()
        before = peak_rss_kb(head.node.process.pid)
        bad = [claims(jpeg_bytes(), 20000, 20000), claims(jpeg_bytes(), 8000, 8000)]
        bad += [RNG.bytes(int(n)) for n in RNG.integers(1, 5000, 4)]  # random bytes
        bad += [b"\xff\xd8" + RNG.bytes(int(n)) for n in RNG.integers(1, 5000, 4)]  # JPEG start, then garbage
        bad += [jpeg_bytes()[: int(n)] for n in RNG.integers(4, 600, 3)]  # truncated
        bad += [cv2.imencode(".bmp", RGB)[1].tobytes(), b""]
        for data in bad:
            assert head.send(compressed(data), expect_answer=False) is None
        assert head.send(compressed(jpeg_bytes())) is not None, "the head stopped serving after bad frames"
        grown_mb = (peak_rss_kb(head.node.process.pid) - before) / 1024
        assert grown_mb < 50, f"the bombs grew the head's peak RSS by {grown_mb:.0f} MB"
        values = head.last_diagnostics()
        assert values["rejected.image_format"] == str(len(bad)), values
        log = head.node.log()
        assert "20000x20000" in log and "max_image_pixels" in log
    finally:
        head.close()


def test_corrupt_frames_are_reported_by_the_node_not_by_libjpeg(demo_bundle, tmp_path):
    frames = []
    for seed in range(100):  # the corruptions libjpeg decodes anyway, with a warning
        printed: list[str] = []
        try:
            decode_compressed(corrupt_scan(jpeg_bytes(), seed), messages=printed)
        except ImageFormatError:
            continue
        if printed:
            frames.append(corrupt_scan(jpeg_bytes(), seed))
    frames = frames[:12]
    assert len(frames) == 12
    head = HeadHarness(demo_bundle, tmp_path, namespace="/corrupt", compressed_input=True)
    try:
        answered = [head.send(compressed(data)) for data in frames]
        assert all(out is not None for out in answered), "libjpeg decodes these: the head must still serve them"
        values = head.last_diagnostics()
        assert values["decoder_warnings"] == "12", values
        lines = head.node.log().splitlines()
        raw = [line for line in lines if line.startswith("Corrupt JPEG data")]
        reported = [line for line in lines if "frame decoded despite: Corrupt JPEG data" in line]
        assert raw == [], "libjpeg wrote to the node's stderr"
        assert 1 <= len(reported) <= 3, "the node's own warning is throttled"
    finally:
        head.close()


def test_a_raw_image_over_max_image_pixels_is_refused_before_conversion(demo_bundle, tmp_path):
    head = HeadHarness(demo_bundle, tmp_path, namespace="/small", max_image_pixels=320 * 240)
    try:
        assert head.send(array_to_image(RGB, "rgb8")) is not None, head.node.log()  # exactly at the limit
        big = cv2.resize(RGB, (321, 240))
        assert head.send(array_to_image(big, "rgb8"), expect_answer=False) is None
        values = head.last_diagnostics()
        assert values["rejected.image_format"] == "1", values
        assert "321x240" in head.node.log() and "max_image_pixels" in head.node.log()
    finally:
        head.close()


def test_the_head_warns_when_nobody_subscribes_to_its_features(demo_bundle, tmp_path):
    node = NodeProcess(
        "splitcomp_head_node",
        "head_node",
        {"bundle": str(demo_bundle), "providers": ["cpu"]},
        tmp_path,
        "/lonely",
    )
    probe = Probe("lonely_probe")
    statuses: list = []
    probe.node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if s.name == "splitcomp: /lonely/head_node"),
        10,
    )
    try:

        def warned() -> bool:
            return bool(statuses) and "no subscriber on splitcomp/features" in statuses[-1].message

        started = time.monotonic()
        assert probe.spin_until(warned, 30.0), [s.message for s in statuses[-3:]] or node.log()
        assert statuses[-1].level == DiagnosticStatus.WARN
        assert time.monotonic() - started >= 4.0, "it warned before 5 s without a subscriber had passed"
        probe.node.create_subscription(SplitFeatures, "/lonely/splitcomp/features", lambda m: None, 10)
        assert probe.spin_until(lambda: statuses and "no subscriber" not in statuses[-1].message, 15.0), [
            s.message for s in statuses[-3:]
        ]
        assert diagnostics_values(statuses[-1]).get("frames_in", "0") == "0"
    finally:
        probe.close()
        assert node.stop() == 0, node.log()

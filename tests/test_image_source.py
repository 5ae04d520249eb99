"""image_source publishes a folder's images in order, looping, with its frame_id, then stops at count."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from ros_harness import NodeProcess, Probe
from sensor_msgs.msg import Image

from splitcomp_ros.images import image_to_array
from splitcomp_tools.run.local_launch import executable_path, ros_arguments

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out


def test_folder_source_loops_in_order_and_stops_at_count(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    for i, rgb in enumerate(images):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    probe = Probe("source_probe")
    received = []
    probe.node.create_subscription(Image, "image_raw", received.append, 10)
    node = NodeProcess(
        "splitcomp_tools",
        "image_source",
        {
            "source": str(folder),
            "rate_hz": 20.0,
            "count": 5,
            "frame_id": "cam_test",
            "encoding": "bgr8",
            "wait_for_subscriber": True,
        },
        tmp_path,
    )
    try:
        assert probe.spin_until(lambda: len(received) >= 5, 30.0), node.log()
        probe.spin_for(0.5)
        assert len(received) == 5, "count must stop the source"
        for i, msg in enumerate(received):
            assert msg.header.frame_id == "cam_test" and msg.encoding == "bgr8"
            np.testing.assert_array_equal(image_to_array(msg), cv2.cvtColor(images[i % 3], cv2.COLOR_RGB2BGR))
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in received]
        assert stamps == sorted(stamps) and stamps[0] > 1e9, "stamps are the current time"
    finally:
        probe.close()
        assert node.stop() == 0, node.log()


def test_a_missing_source_is_refused_at_start_up(tmp_path):
    cmd = [
        sys.executable,
        str(executable_path("splitcomp_tools", "image_source")),
        *ros_arguments({"source": str(tmp_path / "missing")}),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no such file or folder" in result.stderr and "Traceback" not in result.stderr


def test_a_folder_where_nothing_decodes_is_refused_with_the_files_named(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("a.png", "b.jpg", "c.jpg", "d.png"):
        (folder / name).write_bytes(b"not an image")
    cmd = [
        sys.executable,
        str(executable_path("splitcomp_tools", "image_source")),
        *ros_arguments({"source": str(folder)}),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    fatal = [line for line in result.stderr.splitlines() if line.startswith("[FATAL]")]
    assert len(fatal) == 1 and "gave no frame" in fatal[0] and "4 image file(s)" in fatal[0] and "a.png" in fatal[0]

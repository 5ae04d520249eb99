"""The two-host test bed: bytes really cross a shaped link (no shared memory), and nothing is left behind.

Needs root and network namespaces; where they cannot be made, every test here is skipped with the reason.
"""

import json
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from splitcomp_tools.run.testbed import Testbed, cleanup, leftovers, why_unavailable

PEER = pathlib.Path(__file__).with_name("link_peer.py")
REASON = why_unavailable()
pytestmark = [
    pytest.mark.slow,  # the two-host test bed: `make test-fast` leaves it out
    pytest.mark.skipif(REASON is not None, reason=f"no test bed here: {REASON}"),
]


def bench_over_the_link(bundle, tmp_path, out, *options: str) -> subprocess.CompletedProcess:
    """`bench pipeline` of `bundle` over a 5.85 Mbit/s bed, its JSON written to `out`."""
    bench = [sys.executable, "-m", "splitcomp_tools.bench", "pipeline", "--bundle", str(bundle.path), "--link", "5.85"]
    return subprocess.run(
        [*bench, *options, "--out", str(tmp_path), "--json", str(out)], capture_output=True, text=True, timeout=240
    )


def test_100_kb_at_1_1_mbit_s_takes_0_7_s_not_a_millisecond(tmp_path):
    out = tmp_path / "seconds.json"
    with Testbed(1.1) as bed:
        listener = bed.run_in("edge", [sys.executable, str(PEER), "listen", str(out), "3"])
        bed.run_in("robot", [sys.executable, str(PEER), "talk", "100000", "3"])
        assert listener.wait(timeout=90) == 0
        robot_bytes = bed.qdisc_stats("robot")
    seconds = json.loads(out.read_text())
    assert len(seconds) == 3, seconds
    # 100,000 bytes are 0.727 s at 1.1 Mbit/s; through shared memory they would take about a millisecond.
    assert all(0.65 < s < 1.6 for s in seconds), seconds
    sent = int(robot_bytes.split("Sent ")[1].split(" bytes")[0])
    assert sent > 3 * 100_000, robot_bytes  # every byte went through the robot's shaped veth


UDP_BURST = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(10):  # resolve the edge's address first (ARP, which the loss may drop too)
    s.sendto(b"x", (sys.argv[1], 9))
    time.sleep(0.2)
for _ in range(int(sys.argv[2])):
    s.sendto(b"x" * 200, (sys.argv[1], 9))
    time.sleep(0.0002)
"""


def test_a_lossy_link_drops_the_share_of_packets_it_is_given_and_changes_in_place():
    with Testbed(100.0, loss_pct=10.0) as bed:
        send = [sys.executable, "-c", UDP_BURST, bed.addresses["edge"], "2000"]
        assert bed.run_in("robot", send).wait(timeout=60) == 0
        passed, dropped = bed.packet_counts()
        # 10 % of about 2,000 packets, give or take five standard deviations
        assert passed + dropped >= 1800 and 0.06 <= dropped / (passed + dropped) <= 0.14, (passed, dropped)
        bed.set_loss(0)
        assert bed.run_in("robot", send).wait(timeout=60) == 0
        assert bed.packet_counts()[1] == dropped, "no more drops at 0 %"
        assert bed.set_rate(5.85) >= 0 and bed.loss_pct == 0.0
        prefix = bed.prefix
    assert leftovers(prefix) == []


@pytest.mark.parametrize("loss", ["-1", "100", "abc", "nan"])
def test_a_bad_loss_is_one_error_line_and_nothing_is_set_up(loss):
    up = subprocess.run(
        [sys.executable, "-m", "splitcomp_tools.testbed", "up", "5.85", "--loss", loss],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 2, up.stderr
    lines = up.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--loss" in lines[0], up.stderr
    assert "Traceback" not in up.stderr and up.stdout == ""


def test_nothing_is_left_after_sigint(tmp_path):
    up = subprocess.Popen(
        [sys.executable, "-m", "splitcomp_tools.testbed", "up", "5.85"], stdout=subprocess.PIPE, text=True
    )
    prefix = f"sc{up.pid}"
    try:
        assert up.stdout is not None and json.loads(up.stdout.readline())["prefix"] == prefix
        assert f"{prefix}r" in leftovers(prefix) and f"{prefix}shm" in leftovers(prefix)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:  # the test failed before its SIGINT: end the bed the same way, and clean up after it
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait()
            cleanup(prefix)
    time.sleep(0.1)
    assert leftovers(prefix) == []


def test_bench_pipeline_over_the_link_picks_the_cut_for_its_rate(tiny_multi_cut_bundle, tmp_path):
    out = tmp_path / "result.json"
    run = bench_over_the_link(tiny_multi_cut_bundle, tmp_path, out, "--rate", "10", "--duration", "3")
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["link_mbps"] == 5.85 and result["frames_classified"] >= 25
    assert result["cuts"] == {"feat": result["frames_classified"]}  # 5.85 Mbit/s is in feat's range (0..10)
    assert result["lost_features"] == 0 and result["transport_overhead_ms"] > 0


def test_bench_pipeline_plays_a_clip_with_inter_frame_coding_over_the_link(tiny_bundle, tmp_path):
    out = tmp_path / "result.json"
    run = bench_over_the_link(
        tiny_bundle,
        tmp_path,
        out,
        "--rate",
        "10",
        "--duration",
        "3",
        "--source",
        "video:carphone",
        "--preload",
        "120",
        "--codec",
        "zstd",
        "--keyframe-interval",
        "5",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["link_mbps"] == 5.85 and result["frames_classified"] >= 25
    # A key frame, then four P-frames, in turn (a lost answer only adds key frames).
    assert result["key_frames"] >= 6 and result["p_frames"] >= 15
    assert result["frames_classified"] <= result["key_frames"] + result["p_frames"] <= 30
    # Every frame the head sent is answered, or rejected by the tail under a reason, or lost on the way.
    rejected = sum(result["tail_rejects"].values())
    assert result["frames_classified"] + rejected <= result["key_frames"] + result["p_frames"]


def test_bench_pipeline_over_a_lossy_link_loses_only_the_lost_messages(tiny_bundle, tmp_path):
    out = tmp_path / "rows.json"
    run = bench_over_the_link(
        tiny_bundle,
        tmp_path,
        out,
        "--rate",
        "20",
        "--duration",
        "4",
        "--source",
        "video:carphone",
        "--preload",
        "120",
        "--codec",
        "zstd",
        "--keyframe-interval",
        "30",
        "--loss",
        "20",
        "--reference",
        "acknowledged",
        "--features-qos",
        "best_effort",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert (row["loss_pct"], row["keyframe_interval"], row["reference"]) == (20.0, 30, "acknowledged")
    assert row["packets"] > 0 and 0.05 < row["packet_loss"] < 0.4, row  # the bed dropped packets each way
    assert row["lost_messages"] >= 1, row  # best effort: a lost fragment loses the message
    # A lost message costs only itself (and the key frames the interval asks for).
    assert row["answered"] + row["lost_messages"] + sum(row["tail_rejects"].values()) >= row["published"] - 1, row
    assert "answered / published" in run.stdout and "20 %" in run.stdout


def test_a_bad_loss_for_bench_pipeline_is_refused_before_anything_is_set_up(tiny_bundle, tmp_path):
    bench = [sys.executable, "-m", "splitcomp_tools.bench", "pipeline", "--bundle", str(tiny_bundle.path)]
    run = subprocess.run([*bench, "--link", "5.85", "--loss", "0,100"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.strip().startswith("error:") and "--loss" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1

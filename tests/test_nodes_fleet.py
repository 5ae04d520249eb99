"""One tail_node serving a fleet over real DDS: per-robot topics, batched answers equal to each frame alone,
and a hostile robot rejected and counted under its own name while the others' answers do not change.
With backend triton, a real tritonserver (splitcomp_tools.run.triton_run) answers; stopped, the tail reports
an ERROR and counts the dropped frames under `triton_down`; restarted, it answers again by itself."""

import dataclasses
import pathlib

import launch_model
import numpy as np
import pytest
from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ros_harness import NodeProcess, Probe, diagnostics_values

from splitcomp_core.head import HeadPipeline
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import TailPipeline
from splitcomp_core.triton_session import triton_model_name
from splitcomp_msgs.msg import Classification, FeaturesAck, SplitFeatures
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.qos import features_qos
from splitcomp_tools.model.triton.repository import write_triton_repo
from splitcomp_tools.run.triton_run import TritonServer, find_server

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out

TAIL = "splitcomp: /fleet/tail_node"
RNG = np.random.default_rng(19)


def encoded(bundle, count):
    head = HeadPipeline(bundle, EncoderConfig(bits=6, mode="per_channel"), providers=["cpu"])
    return [head(RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8), "rgb8").tensors for _ in range(count)]


def message(tensors, model_id, sequence, frame_id="camera"):
    msg = SplitFeatures()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = sequence
    msg.sequence = sequence
    msg.model_id = model_id
    msg.tensors = [tensor_to_msg(t) for t in tensors]
    return msg


class Fleet:
    """A fleet tail in namespace /fleet and a probe that plays the robots and reads answers and diagnostics."""

    def __init__(self, bundle, tmp_path, robots, tail=None, **params) -> None:
        common = {"bundle": str(bundle.path), "providers": ["cpu"], "robots": robots, **params}
        self.tail = tail or NodeProcess("splitcomp_tail_node", "tail_node", common, tmp_path, namespace="/fleet")
        self.probe = Probe("fleet_probe")
        self.answers: dict[str, dict[int, Classification]] = {r: {} for r in robots}
        self.order: dict[str, list[int]] = {r: [] for r in robots}  # sequences in the order their answers came
        self.statuses: dict[str, dict] = {}
        self.levels: dict[str, bytes] = {}
        self.messages: dict[str, str] = {}
        self.publishers = {}
        node = self.probe.node
        for robot in robots:
            node.create_subscription(
                Classification,
                f"/fleet/{robot}/splitcomp/classification",
                lambda m, r=robot: self._on_answer(r, m),
                50,
            )
            self.publishers[robot] = node.create_publisher(
                SplitFeatures, f"/fleet/{robot}/splitcomp/features", features_qos()
            )
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        for publisher in self.publishers.values():
            assert self.probe.wait_for_subscriber(publisher), self.tail.log()

    def _on_answer(self, robot: str, msg: Classification) -> None:
        self.order[robot].append(msg.sequence)
        self.answers[robot].setdefault(msg.sequence, msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(TAIL):
                name = status.name[len(TAIL) :].strip()
                self.statuses[name] = diagnostics_values(status)
                self.levels[name] = status.level
                self.messages[name] = status.message

    def close(self) -> None:
        self.probe.close()
        assert self.tail.stop() == 0, self.tail.log()


def same_answer(got: Classification, expected) -> None:
    assert [r.class_id for r in got.results] == [c for c, _, _ in expected.results]
    np.testing.assert_allclose([r.score for r in got.results], [s for *_, s in expected.results], atol=1e-4)


def test_a_fleet_tail_answers_each_robot_as_one_frame_alone_and_a_hostile_robot_changes_nothing(
    tiny_batch_bundle, tiny_bundle, tmp_path
):
    robots = ["r1", "r2", "r3", "hostile"]
    fleet = Fleet(tiny_batch_bundle, tmp_path, robots, max_batch=4, batch_wait_ms=40)
    model_id = tiny_batch_bundle.manifest.model_id
    alone = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    frames = {r: encoded(tiny_batch_bundle, 6) for r in robots[:3]}
    foreign = encoded(tiny_bundle, 1)[0]  # another bundle's features: the same shapes, another model_id
    garbage = [dataclasses.replace(foreign[0], data=foreign[0].data[:-3])]
    flood = encoded(tiny_batch_bundle, 1)[0]
    try:
        for step in range(6):
            hostile = fleet.publishers["hostile"]
            for n in range(20):  # floods: its queue on the tail holds 5, DDS drops its overflow, never another's
                hostile.publish(message(flood, model_id, 100 * step + n + 1))
            fleet.probe.spin_for(0.3)  # the flood out of the writer's history (depth 5), so the next two arrive
            hostile.publish(message(foreign, "sha256:" + "f" * 64, 1000 + step))  # another bundle's
            hostile.publish(message(garbage, model_id, 2000 + step))
            for robot in robots[:3]:
                fleet.publishers[robot].publish(message(frames[robot][step], model_id, step + 1))
            done = lambda s=step + 1: all(s in fleet.answers[r] for r in robots[:3])  # noqa: E731
            assert fleet.probe.spin_until(done, 20.0), fleet.tail.log()
        for robot in robots[:3]:
            for step, tensors in enumerate(frames[robot]):
                same_answer(fleet.answers[robot][step + 1], alone(model_id, tensors))

        def counted():
            """Every hostile frame the tail received is answered, skipped as stale or rejected under its name."""
            h = {k: int(v) for k, v in fleet.statuses.get("robot hostile", {}).items() if v.isdigit()}
            done = h.get("frames_out", 0) + h.get("stale", 0) + h.get("rejected", 0)
            answered = all(fleet.statuses.get(f"robot {r}", {}).get("frames_out") == "6" for r in robots[:3])
            return (
                answered
                and h.get("rejected.model_id", 0) > 0
                and h.get("rejected.codec", 0) > 0
                and done == h["frames_in"]
            )

        assert fleet.probe.spin_until(counted, 10.0), (
            str(fleet.statuses.get("robot hostile")) + fleet.tail.log()[-3000:]
        )
        hostile = fleet.statuses["robot hostile"]
        assert int(hostile["rejected"]) == int(hostile["rejected.model_id"]) + int(hostile["rejected.codec"])
        own = fleet.statuses[""]
        sizes = {int(pair.split(":")[0]) for pair in own["batch_histogram"].split()}
        assert max(sizes) > 1, own  # frames of several robots shared a tail run
        assert own["backend"] == "onnxruntime" and "queue_wait_ms.p95" in own
        for robot in robots[:3]:
            values = fleet.statuses[f"robot {robot}"]
            assert values["rejected"] == "0" and values["lost"] == "0", values
            assert values["frames_out"] == "6" and "latency_ms.p95" in values
            assert values["topic"] == f"/fleet/{robot}/splitcomp/features"
            assert 0 < float(values["batch_share"]) < 1
        assert "rejected features" in fleet.tail.log() and "'hostile'" in fleet.tail.log()
    finally:
        fleet.close()


def test_with_several_workers_each_robots_answers_stay_in_order_and_equal_one_frame_alone(tiny_batch_bundle, tmp_path):
    robots = ["r1", "r2", "r3"]
    fleet = Fleet(tiny_batch_bundle, tmp_path, robots, max_batch=2, inference_workers=3, intra_op_threads=1)
    model_id = tiny_batch_bundle.manifest.model_id
    alone = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    frames = {r: encoded(tiny_batch_bundle, 10) for r in robots}
    try:
        for n in range(10):
            for robot in robots:
                fleet.publishers[robot].publish(message(frames[robot][n], model_id, n + 1))
            fleet.probe.spin_for(0.005)
        assert fleet.probe.spin_until(lambda: all(10 in fleet.answers[r] for r in robots), 20.0), fleet.tail.log()
        for robot in robots:
            order = fleet.order[robot]
            assert order == sorted(set(order)), (robot, order)  # never an answer before an earlier frame's
            for sequence, answer in fleet.answers[robot].items():
                same_answer(answer, alone(model_id, frames[robot][sequence - 1]))
        assert fleet.probe.spin_until(lambda: "inference_workers" in fleet.statuses.get("", {}), 10.0), fleet.statuses
        own = fleet.statuses[""]
        assert own["inference_workers"] == "3" and own["intra_op_threads"] == "1", own
        assert "inference_workers 3, intra_op_threads 1" in fleet.tail.log()
    finally:
        fleet.close()


def test_the_tail_that_edge_fleet_launch_starts_serves_its_robots_with_the_dds_profile(tiny_batch_bundle, tmp_path):
    """The process edge_fleet.launch.py starts (read by launch_model), its arguments passed as launch passes them."""
    root = pathlib.Path(__file__).resolve().parents[1]
    share = {"splitcomp_tools": pathlib.Path(get_package_share_directory("splitcomp_tools"))}
    given = {"bundle": str(tiny_batch_bundle.path), "robots": "[r1, r2]", "namespace": "fleet", "max_batch": "4"}
    (process,), opaque = launch_model.processes(root / "launch" / "edge_fleet.launch.py", given, share)
    assert opaque == ["apply_in_launch"] and process.executable == "tail_node"
    params = {**process.params, "providers": "[cpu]"}
    tail = NodeProcess(
        process.package,
        process.executable,
        params,
        tmp_path,
        params_file=process.params_files[0],
        ros_args=process.ros_args(),
    )
    fleet = Fleet(tiny_batch_bundle, tmp_path, ["r1", "r2"], tail=tail)
    model_id = tiny_batch_bundle.manifest.model_id
    alone = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    try:
        frames = encoded(tiny_batch_bundle, 2)
        for robot, tensors in zip(("r1", "r2"), frames):
            fleet.publishers[robot].publish(message(tensors, model_id, 1))
        assert fleet.probe.spin_until(lambda: all(fleet.answers[r] for r in ("r1", "r2")), 20.0), tail.log()
        for robot, tensors in zip(("r1", "r2"), frames):
            same_answer(fleet.answers[robot][1], alone(model_id, tensors))
        assert fleet.probe.spin_until(lambda: "max_batch" in fleet.statuses.get("", {}), 10.0), tail.log()
        assert fleet.statuses[""]["max_batch"] == "4" and fleet.statuses[""]["backend"] == "onnxruntime"
        environ = pathlib.Path(f"/proc/{tail.process.pid}/environ").read_bytes().split(b"\0")
        assert any(b"_DEFAULT_PROFILES_FILE=" in entry for entry in environ)
    finally:
        fleet.close()


def test_a_static_batch_tail_serves_one_frame_at_a_time_and_says_how_to_batch(tiny_bundle, tmp_path):
    fleet = Fleet(tiny_bundle, tmp_path, ["a", "b"], max_batch=8)
    model_id = tiny_bundle.manifest.model_id
    try:
        for robot, tensors in zip("ab", encoded(tiny_bundle, 2)):
            fleet.publishers[robot].publish(message(tensors, model_id, 1))
        assert fleet.probe.spin_until(lambda: all(fleet.answers[r] for r in "ab"), 20.0), fleet.tail.log()
        assert fleet.probe.spin_until(lambda: fleet.statuses.get("", {}).get("batch_histogram") == "1:2", 10.0), (
            fleet.statuses
        )
        assert fleet.statuses[""]["max_batch"] == "1"
        assert fleet.tail.log().count("--dynamic-batch") == 1
    finally:
        fleet.close()


@pytest.fixture
def triton(tiny_batch_bundle, tmp_path):
    """A tritonserver whose repository `triton_repo` wrote from the tiny tail (the node's default model name)."""
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (requirements/python.txt)")
    info, why = find_server()
    if info is None:
        pytest.skip(why)
    write_triton_repo(tiny_batch_bundle, tmp_path / "repo")
    server = TritonServer(info, tmp_path / "repo", tmp_path)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"tritonserver did not start: {exc}")
    yield server
    server.stop()


def test_a_triton_tail_answers_as_onnx_runtime_reports_a_stopped_server_and_reconnects(
    tiny_batch_bundle, triton, tmp_path
):
    robots = ["r1", "r2"]
    fleet = Fleet(tiny_batch_bundle, tmp_path, robots, backend="triton", triton_url=triton.url, max_batch=4)
    model_id = tiny_batch_bundle.manifest.model_id
    alone = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    frames = encoded(tiny_batch_bundle, 8)
    sequence = 0

    def send_both(expect_answers: bool) -> None:
        nonlocal sequence
        sequence += 1
        for robot, tensors in zip(robots, frames[sequence % 4 :]):
            fleet.publishers[robot].publish(message(tensors, model_id, sequence))
        if expect_answers:
            done = lambda s=sequence: all(s in fleet.answers[r] for r in robots)  # noqa: E731
            assert fleet.probe.spin_until(done, 20.0), fleet.tail.log()

    try:
        for _ in range(3):
            send_both(True)
        for robot_index, robot in enumerate(robots):
            for seq, answer in fleet.answers[robot].items():
                same_answer(answer, alone(model_id, frames[seq % 4 + robot_index]))
        triton.stop()

        def down():
            values = fleet.statuses.get("robot r1", {})
            return int(values.get("rejected.triton_down", 0)) > 0 and fleet.levels.get("") == DiagnosticStatus.ERROR

        for _ in range(20):
            send_both(False)
            if fleet.probe.spin_until(down, 0.5):
                break
        assert down(), (fleet.statuses, fleet.tail.log())
        assert "triton_down" in fleet.messages[""]
        assert fleet.tail.process.poll() is None, "the tail crashed"
        assert 1 <= fleet.tail.log().count(": dropped ") <= 2, fleet.tail.log()  # one line per 5 s of outage
        triton.start()
        answered = len(fleet.answers["r1"])
        for _ in range(40):
            send_both(False)
            if fleet.probe.spin_until(lambda: len(fleet.answers["r1"]) > answered, 0.5):
                break
        assert len(fleet.answers["r1"]) > answered, fleet.tail.log()
        assert fleet.probe.spin_until(lambda: fleet.levels.get("") != DiagnosticStatus.ERROR, 10.0), fleet.statuses
        assert "answers again" in fleet.tail.log()
    finally:
        fleet.close()


def test_the_triton_model_is_the_one_triton_repo_writes_and_one_per_cut(tiny_batch_bundle, tiny_multi_cut_bundle):
    from splitcomp_tail_node.fleet import triton_models

    assert triton_models(tiny_batch_bundle, "") == {"": triton_model_name(tiny_batch_bundle)}
    assert triton_models(tiny_batch_bundle, "tail") == {"": "tail"}
    written = {
        m.cut_id: m.name for m in write_triton_repo(tiny_multi_cut_bundle, tiny_multi_cut_bundle.path.parent / "repo")
    }
    assert triton_models(tiny_multi_cut_bundle, "") == written and set(written) == {"feat", "pooled"}
    assert triton_models(tiny_multi_cut_bundle, "t") == {"feat": "t_feat", "pooled": "t_pooled"}


@pytest.mark.parametrize("backend", ["onnxruntime", "triton"])
def test_each_robot_gets_its_own_acknowledgements_and_p_frames_decode_against_them(
    tiny_batch_bundle, tmp_path, request, backend
):
    params = {"max_batch": 4}
    if backend == "triton":
        params.update(backend="triton", triton_url=request.getfixturevalue("triton").url)
    robots = ["r1", "r2"]
    fleet = Fleet(tiny_batch_bundle, tmp_path, robots, **params)
    acks: dict[str, dict[int, FeaturesAck]] = {r: {} for r in robots}
    for robot in robots:
        fleet.probe.node.create_subscription(
            FeaturesAck, f"/fleet/{robot}/splitcomp/ack", lambda m, r=robot: acks[r].setdefault(m.sequence, m), 50
        )
    model_id = tiny_batch_bundle.manifest.model_id
    head = HeadPipeline(tiny_batch_bundle, EncoderConfig(bits=4, mode="per_channel", codec="zstd"), providers=["cpu"])
    alone = TailPipeline(tiny_batch_bundle, ["cpu"], top_k=5)
    images = [RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(3)]
    key = head(images[0], "rgb8")
    p_frame = head(images[2], "rgb8", key.codes)  # frame 3 coded against frame 1: frame 2 was lost on the way
    try:
        fleet.probe.spin_for(1.0)  # the acknowledgement subscriptions matched
        for robot in robots:
            fleet.publishers[robot].publish(message(key.tensors, model_id, 1))
        assert fleet.probe.spin_until(lambda: all(1 in acks[r] for r in robots), 20.0), fleet.tail.log()
        p_msg = message(p_frame.tensors, model_id, 3)
        p_msg.reference_sequence = 1
        fleet.publishers["r1"].publish(p_msg)
        wrong = message(p_frame.tensors, model_id, 9)
        wrong.reference_sequence = 7  # r2 never sent frame 7
        fleet.publishers["r2"].publish(wrong)
        done = lambda: 3 in fleet.answers["r1"] and 9 in acks["r2"]  # noqa: E731
        assert fleet.probe.spin_until(done, 20.0), fleet.tail.log()
        fleet.probe.spin_for(0.5)
    finally:
        fleet.close()
    assert set(acks["r1"]) == {1, 3} and set(acks["r2"]) == {1, 9}, "each robot hears only its own"
    assert [acks["r1"][s].status for s in (1, 3)] == [FeaturesAck.STATUS_DECODED] * 2
    assert acks["r2"][9].status == FeaturesAck.STATUS_MISSING_REFERENCE
    assert acks["r1"][3].reference_frames == 32 and acks["r1"][3].header.stamp.sec == 3
    same_answer(fleet.answers["r1"][3], alone(model_id, head(images[2], "rgb8").tensors))
    assert 9 not in fleet.answers["r2"]

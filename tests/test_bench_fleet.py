"""`bench fleet` end to end on the tiny dynamic-batch bundle: two robots, a few seconds, real tail processes."""

import json

import pytest

from splitcomp_tools import bench

pytestmark = pytest.mark.slow  # nodes as processes over DDS: `make test-fast` leaves it out


def test_bench_fleet_measures_each_configuration_per_robot(tiny_batch_bundle, tmp_path, capsys):
    out = tmp_path / "fleet.json"
    argv = ["fleet", "--bundle", str(tiny_batch_bundle.path), "--robots", "2", "--rate", "10", "--duration", "2"]
    argv += ["--configs", "separate,batched", "--frames", "4", "--out", str(tmp_path / "run"), "--json", str(out)]
    assert bench.main([*argv, "--batched-threads", "0", "--batched-workers", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("tail alone, ONNX Runtime, ms per frame, intra_op_threads 1: batch 1:")
    assert "\ntail alone, ONNX Runtime, ms per frame, intra_op_threads 0 (its default): batch 1:" in printed
    assert "saturation (separate): 2 robot(s)" in printed and "saturation (batched): 2 robot(s)" in printed
    result = json.loads(out.read_text())
    assert sorted(result["batch_scaling_ms_per_frame"]) == ["1", "16", "2", "4", "8"] and result["tail_batches"]
    assert sorted(result["batch_scaling_by_threads"]) == ["0", "1"]
    runs = {r["config"]: r for r in result["runs"]}
    # what each ran with: each separate tail at --intra-op-threads, the batched one as its /diagnostics says
    assert (runs["separate"]["threads"], runs["separate"]["workers"]) == (1, 1)
    assert (runs["batched"]["threads"], runs["batched"]["workers"]) == (0, 3)
    for config, run in runs.items():
        assert set(run["per_robot"]) == {"robot_0", "robot_1"}, config
        assert run["published"] == 40 and run["answered"] == 40, run
        assert 0 < run["p50_ms"] <= run["p95_ms"] < 1000
        assert run["rss_mb"] > 10 and run["cpu_cores"] >= 0
    assert runs["separate"]["batch_histogram"] == ""
    sizes = dict(pair.split(":") for pair in runs["batched"]["batch_histogram"].split())
    assert sum(int(size) * int(n) for size, n in sizes.items()) >= 40  # every measured frame went through a batch


def test_bench_fleet_beside_hostile_robots_answers_the_others_and_counts_each_under_its_name(
    tiny_batch_bundle, tmp_path, capsys
):
    out = tmp_path / "fleet.json"
    argv = ["fleet", "--bundle", str(tiny_batch_bundle.path), "--robots", "2", "--rate", "10", "--duration", "2"]
    argv += ["--configs", "batched", "--hostile", "garbage,other-bundle,flood", "--frames", "4"]
    assert bench.main([*argv, "--out", str(tmp_path / "run"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "saturation (batched): 2 robot(s) with p95 <= 100 ms and < 1 % lost (runs without a hostile robot)" in printed
    )
    assert "hostile_other_bundle" in printed and "model_id:" in printed and "rejected by reason" in printed
    result = json.loads(out.read_text())
    assert result["hostile"] == ["garbage", "other-bundle", "flood"] and result["flood_rate_hz"] == 100
    runs = {(r["config"], r["hostile"]): r for r in result["runs"]}
    assert len(runs) == len(result["runs"]) == 4  # the batched tail alone: separate tails are each a tail_node
    assert (runs[("batched", None)]["threads"], runs[("batched", None)]["workers"]) == (1, 2)  # its own defaults
    for (config, hostile), run in runs.items():
        assert set(run["per_robot"]) == {"robot_0", "robot_1"}, (config, hostile)  # the well-behaved robots only
        assert run["published"] == 40 and run["answered"] == 40, (config, hostile, run)
        if hostile is None:
            assert run["hostile_robot"] is None
            continue
        bad, tail = run["hostile_robot"], run["hostile_robot"]["tail"]
        assert bad["name"] == "hostile_" + hostile.replace("-", "_") and bad["published"] > 0, run
        if hostile == "other-bundle":
            assert tail["rejected"] == tail["rejected.model_id"] == tail["frames_in"] > 0, (config, tail)
        elif hostile == "garbage":
            reasons = {k: n for k, n in tail.items() if k.startswith("rejected.")}
            assert set(reasons) == {"rejected.codec", "rejected.shape", "rejected.tensor_count"}, (config, tail)
            assert tail["rejected"] == sum(reasons.values()) == tail["frames_in"] > 0, (config, tail)
        else:
            assert bad["published"] == 200 and tail["rejected"] == 0 and tail["frames_out"] > 0, (config, tail)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--robots", "0"], "--robots '0': give robots from 1 to 64"),
        (["--robots", "two"], "--robots 'two'"),
        (["--configs", "separate,gpu"], "--configs 'separate,gpu': name some of separate, batched, triton"),
        (["--hostile", "flood,ddos"], "--hostile 'flood,ddos': name some of flood, garbage, other-bundle, each once"),
        (["--hostile", "garbage,garbage"], "--hostile 'garbage,garbage'"),
        (["--hostile", ","], "--hostile ','"),
        (["--batched-workers", "0"], "--batched-workers"),
        (["--batched-threads", "-1"], "--batched-threads"),
    ],
)
def test_bench_fleet_refuses_bad_options_with_one_error_line(options, said, tmp_path, capsys):
    assert bench.main(["fleet", "--out", str(tmp_path), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and said in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_bench_fleet_over_a_triton_server_it_starts(tiny_batch_bundle, tmp_path, capsys):
    from splitcomp_tools.run import triton_run

    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (requirements/python.txt)")
    info, why = triton_run.find_server()
    if info is None:
        pytest.skip(why)
    out = tmp_path / "fleet.json"
    argv = ["fleet", "--bundle", str(tiny_batch_bundle.path), "--robots", "2", "--duration", "2", "--frames", "4"]
    assert bench.main([*argv, "--configs", "triton", "--out", str(tmp_path / "run"), "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"]
    assert run["config"] == "triton" and run["answered"] == run["published"] == 40, run
    assert "saturation (triton): 2 robot(s)" in capsys.readouterr().out

"""Nodes refuse a bad configuration at start-up with one clear line and a non-zero exit."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from splitcomp_tools.run.local_launch import executable_path, ros_arguments

pytestmark = pytest.mark.slow  # nodes as processes: `make test-fast` leaves it out

ROOT = pathlib.Path(__file__).resolve().parents[1]
NODES = [("splitcomp_head_node", "head_node"), ("splitcomp_tail_node", "tail_node")]


def run(package, name, params, timeout=60):
    cmd = [sys.executable, str(executable_path(package, name)), *ros_arguments(params)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def broken_bundle(demo_bundle, tmp_path_factory):
    broken = tmp_path_factory.mktemp("broken") / "bundle"
    shutil.copytree(demo_bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["cut"][0]["name"] = "not_a_head_output"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    return broken


@pytest.mark.parametrize("package, name", NODES)
def test_missing_bundle(package, name, tmp_path):
    result = run(package, name, {"bundle": str(tmp_path / "nowhere")})
    assert result.returncode == 2
    fatal = [line for line in result.stderr.splitlines() if line.startswith("[FATAL]")]
    assert len(fatal) == 1 and "nowhere" in fatal[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("package, name", NODES)
def test_invalid_bundle_names_the_file(package, name, broken_bundle):
    result = run(package, name, {"bundle": str(broken_bundle)})
    assert result.returncode == 2
    assert "manifest.json" in result.stderr or "head.onnx" in result.stderr
    assert "not_a_head_output" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("change", [{"decoder": "yolo9000"}, {"stride": 8}])
def test_a_detection_bundle_with_an_unknown_decoder_or_unfit_outputs_is_refused_in_one_line(
    change, tiny_detection_bundle, tmp_path
):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_detection_bundle.path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["detection"].update(change)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = run("splitcomp_tail_node", "tail_node", {"bundle": str(bundle)})
    assert result.returncode == 2
    fatal = [line for line in result.stderr.splitlines() if line.startswith("[FATAL]")]
    assert len(fatal) == 1 and "decoder" in fatal[0] and "Traceback" not in result.stderr


def test_out_of_range_parameter(demo_bundle):
    result = run("splitcomp_tail_node", "tail_node", {"bundle": str(demo_bundle), "top_k": 0})
    assert result.returncode == 2 and "top_k" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "param, value",
    [("inference_workers", 0), ("inference_workers", 65), ("intra_op_threads", -1), ("intra_op_threads", 257)],
)
def test_a_fleet_tails_worker_or_thread_count_out_of_bounds_is_refused_in_one_line(demo_bundle, param, value):
    result = run("splitcomp_tail_node", "tail_node", {"bundle": str(demo_bundle), "robots": ["r1", "r2"], param: value})
    assert result.returncode == 2, result.stderr
    fatal = [line for line in result.stderr.splitlines() if line.startswith("[FATAL]")]
    assert len(fatal) == 1 and f"'{param}'" in fatal[0] and "Traceback" not in result.stderr
    assert "tail ready" not in result.stderr


def test_cpu_fallback_can_be_refused(demo_bundle):
    result = run(
        "splitcomp_head_node",
        "head_node",
        {"bundle": str(demo_bundle), "providers": ["cuda"], "allow_cpu_fallback": False},
    )
    assert result.returncode == 2 and "CUDA" in result.stderr


ALL_NODES = [*NODES, ("splitcomp_tools", "image_source"), ("splitcomp_tools", "overlay")]


@pytest.mark.parametrize("package, name", ALL_NODES)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_parameters_without_starting_a_node(package, name, flag):
    from splitcomp_head_node.head_node import HELP as HEAD_HELP
    from splitcomp_tail_node.tail_node import HELP as TAIL_HELP
    from splitcomp_tools.nodes.image_source import HELP as SOURCE_HELP
    from splitcomp_tools.nodes.overlay import HELP as OVERLAY_HELP

    params = {h.executable: h.params for h in (HEAD_HELP, TAIL_HELP, SOURCE_HELP, OVERLAY_HELP)}[name]
    result = subprocess.run(
        [sys.executable, str(executable_path(package, name)), flag], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"usage: ros2 run {package} {name}")
    for param in params:
        assert f"\n  {param.name} (" in result.stdout, param.name
    assert "[INFO]" not in result.stdout, "a node was started"


@pytest.mark.parametrize("package, name", ALL_NODES)
def test_an_unknown_parameter_is_refused_at_start_up(package, name, demo_bundle):
    params = {"bundle": str(demo_bundle)} if package != "splitcomp_tools" else {}
    result = run(package, name, {**params, "sorce": "generator"})
    assert result.returncode == 2, result.stderr
    fatal = [line for line in result.stderr.splitlines() if line.startswith("[FATAL]")]
    assert len(fatal) == 1 and "'sorce'" in fatal[0] and "Traceback" not in result.stderr
    assert "ready" not in result.stderr and "publishing" not in result.stderr


def test_a_typo_gets_a_suggestion_and_an_argument_outside_ros_args_is_refused():
    result = run("splitcomp_tools", "image_source", {"sorce": "generator"})
    assert "did you mean 'source'?" in result.stderr
    cmd = [sys.executable, str(executable_path("splitcomp_tools", "image_source")), "generator"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unexpected argument 'generator'" in result.stderr


def test_the_fast_dds_profile_loads_without_parser_errors():
    """config/fastdds.xml must load on this distribution's Fast DDS (2.x on Jazzy, 3.x on Kilted): one bad
    element makes Fast DDS drop the whole file, and with it the shared-memory segment camera frames need."""
    names = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
    used = [os.environ[n] for n in names if os.environ.get(n)]
    assert used and all(pathlib.Path(p).samefile(ROOT / "config" / "fastdds.xml") for p in used), used
    result = run("splitcomp_tools", "image_source", {"sorce": "generator"})  # starts a participant, then refuses
    assert result.returncode == 2 and "XMLPARSER" not in result.stderr + result.stdout, result.stderr

"""Launch files, checked without `launch` (not on PyPI): they parse, everything they name exists, every
include passes what the included file requires, and every file gives its nodes the Fast DDS profile.

The static reader (tests/support/launch_model.py) covers every launch/*.launch.py, so a file added later
(a fleet launch file) is held to the same rules. Where launch_ros imports (a system ROS install),
generate_launch_description() is also loaded.
"""

import ast
import importlib.util
import pathlib
import re

import launch_model
import pytest

from splitcomp_ros import dds_profile

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))


def console_scripts(package: str) -> set:
    tree = ast.parse((ROOT / package / "setup.py").read_text())
    scripts = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.match(r"^\w+ = [\w.]+:\w+$", node.value)
        ):
            scripts.add(node.value.split(" = ")[0])
    return scripts


def keyword_strings(call: ast.Call) -> dict:
    return {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}


def calls(tree, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name:
            yield node


def declared_arguments(path) -> set:
    return {c.args[0].value for c in calls(ast.parse(path.read_text()), "DeclareLaunchArgument")}


def test_the_launch_files_exist():
    expected = {"robot.launch.py", "edge.launch.py", "pipeline.launch.py", "edge_fleet.launch.py"}
    assert {p.name for p in LAUNCH_FILES} >= expected


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_include_passes_every_argument_the_included_file_requires(path):
    """`ros2 launch` refuses an include that leaves out a required argument (one without a default) of the
    included file, or of a file that one includes unless that nested include passes it: the parent's own
    arguments do not count (launch, IncludeLaunchDescription.execute). The pipeline broke this once; on that
    file (pipeline.launch.py before issue 17, including robot.launch.py with only image_source) this test failed:

        pipeline.launch.py:33: includes robot.launch.py without its required argument 'bundle'; given: ['image_source']
        pipeline.launch.py:34: includes edge.launch.py without its required argument 'bundle'; given: []

    as the real launch did: "Included launch description missing required argument 'bundle' ..., given: [image_source]".
    """
    assert launch_model.include_rule_violations(path) == []


def test_the_include_rule_catches_a_missing_argument_also_through_a_nested_include(tmp_path):
    """The rule above, on small files: direct, nested (a middle file that does not pass it on), and satisfied."""
    header = "from launch import LaunchDescription\nfrom launch.actions import DeclareLaunchArgument\n"
    include = (
        "import os\nfrom launch.actions import IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
    )
    (tmp_path / "leaf.launch.py").write_text(
        header + "def generate_launch_description():\n"
        "    return LaunchDescription([DeclareLaunchArgument('bundle', description='b'),"
        " DeclareLaunchArgument('rate', default_value='30')])\n"
    )
    for name, middle_passes in (("middle.launch.py", ""), ("passing.launch.py", "'bundle': 'x'")):
        (tmp_path / name).write_text(
            header + include + "def generate_launch_description():\n"
            "    source = PythonLaunchDescriptionSource(os.path.join('share', 'leaf.launch.py'))\n"
            f"    return LaunchDescription([IncludeLaunchDescription(source, launch_arguments={{{middle_passes}}}.items())])\n"
        )
    (tmp_path / "top.launch.py").write_text(
        header + include + "def generate_launch_description():\n"
        "    def include(name, **arguments):\n"
        "        source = PythonLaunchDescriptionSource(os.path.join('share', name))\n"
        "        return IncludeLaunchDescription(source, launch_arguments=arguments.items())\n"
        "    return LaunchDescription([include('middle.launch.py', rate='5'), include('passing.launch.py')])\n"
    )
    assert launch_model.include_rule_violations(tmp_path / "middle.launch.py") == [
        "middle.launch.py:8: includes leaf.launch.py without its required argument 'bundle'; given: []"
    ]
    assert launch_model.include_rule_violations(tmp_path / "passing.launch.py") == []
    assert launch_model.include_rule_violations(tmp_path / "top.launch.py") == [
        "top.launch.py:10: includes middle.launch.py without its required argument 'bundle' (through leaf.launch.py); "
        "given: ['rate']"
    ]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_file_gives_its_nodes_the_fast_dds_profile(path):
    """A dds_profile argument (default auto) and dds_profile.apply_in_launch before the first node, in every file."""
    launch = launch_model.read(path)
    declared = launch.declared()
    assert dds_profile.ARGUMENT in declared, f"{path.name} declares no {dds_profile.ARGUMENT}"
    assert declared[dds_profile.ARGUMENT].default == dds_profile.AUTO
    kinds = [type(e).__name__ if not isinstance(e, tuple) else e[1] for e in launch.entities]
    assert "apply_in_launch" in kinds, f"{path.name} does not run dds_profile.apply_in_launch"
    first_start = min((i for i, k in enumerate(kinds) if k in ("NodeEntry", "Include")), default=len(kinds))
    assert kinds.index("apply_in_launch") < first_start, f"{path.name} starts something before applying the profile"
    imports = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)]
    assert any(n.module == "splitcomp_ros.dds_profile" for n in imports), path.name


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_nodes_name_installed_executables(path):
    tree = ast.parse(path.read_text())
    nodes = [keyword_strings(c) for c in calls(tree, "Node")]
    assert nodes, "a launch file without nodes"
    for node in nodes:
        package, executable = node["package"], node["executable"]
        if package == "rviz2":
            continue
        assert (ROOT / package / "setup.py").is_file(), f"{path.name}: no package {package}"
        assert executable in console_scripts(package), f"{path.name}: {package} installs no {executable}"


def test_pipeline_includes_robot_and_edge_instead_of_repeating_them():
    launch = launch_model.read(ROOT / "launch" / "pipeline.launch.py")
    includes = {i.file: i.arguments for i in launch.includes()}
    bundle = launch_model.Arg("bundle")
    assert includes == {
        "robot.launch.py": {"bundle": bundle, "image_source": "true"},
        "edge.launch.py": {"bundle": bundle},
    }
    assert {n.executable for n in launch.nodes()} == {"overlay", "rviz2"}
    assert launch.declared()["bundle"].required  # handed on to both includes
    assert not set(launch.declared()) & {"head_config", "tail_config", "source"}  # theirs, with defaults


def test_one_host_pipeline_starts_what_robot_and_edge_start_plus_the_overlay():
    share = {"splitcomp_tools": ROOT}
    given = {"bundle": "/data/bundle", "namespace": "demo"}
    pipeline, profile = launch_model.processes(ROOT / "launch" / "pipeline.launch.py", given, share)
    robot, _ = launch_model.processes(ROOT / "launch" / "robot.launch.py", {**given, "image_source": "true"}, share)
    edge, _ = launch_model.processes(ROOT / "launch" / "edge.launch.py", given, share)
    assert [p.executable for p in pipeline] == ["head_node", "image_source", "tail_node", "overlay"]
    assert pipeline[:3] == robot + edge and profile == ["apply_in_launch"] * 3
    assert {p.namespace for p in pipeline} == {"demo"} and pipeline[0].params == {"bundle": "/data/bundle"}
    assert pipeline[0].params_files == [str(ROOT / "config" / "head.yaml")]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_config_files_exist(path):
    for name in re.findall(r'"([\w.]+\.(?:yaml|rviz))"', path.read_text()):
        assert (ROOT / "config" / name).is_file(), f"{path.name} names config/{name}, which is missing"


def test_readme_or_the_deployment_guide_documents_every_launch_argument():
    docs = "".join((ROOT / name).read_text() for name in ("README.md", "docs/deployment.md", "docs/fleet.md"))
    for path in LAUNCH_FILES:
        for argument in declared_arguments(path):
            assert f"{argument}:=" in docs, f"README/docs do not show the {path.name} argument {argument}:="


def test_setup_installs_launch_and_config():
    setup = (ROOT / "splitcomp_tools" / "setup.py").read_text()
    assert '"../launch/*.launch.py"' in setup and '"../config/*"' in setup


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros is only on a system ROS install")
@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_loads(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


def test_edge_fleet_starts_one_tail_for_the_robots_with_the_batching_arguments():
    """One tail_node in the namespace; robots and the batching arguments reach it over tail.yaml's values."""
    share = {"splitcomp_tools": ROOT}
    path = ROOT / "launch" / "edge_fleet.launch.py"
    assert {d.name for d in launch_model.read(path).declared().values() if d.required} == {"bundle", "robots"}
    given = {"bundle": "/data/bundle", "robots": "[r1, r2]", "namespace": "fleet", "backend": "triton"}
    (tail,), opaque = launch_model.processes(path, given, share)
    assert opaque == ["apply_in_launch"] and (tail.executable, tail.namespace) == ("tail_node", "fleet")
    assert tail.params_files == [str(ROOT / "config" / "tail.yaml")]
    assert tail.params == {
        "bundle": "/data/bundle",
        "robots": "[r1, r2]",
        "max_batch": "8",
        "batch_wait_ms": "5",
        "inference_workers": "2",
        "backend": "triton",
        "triton_url": "127.0.0.1:8001",
    }
    with pytest.raises(launch_model.LaunchReadError, match="robots"):
        launch_model.processes(path, {"bundle": "/data/bundle"}, share)


def test_camera_topic_points_the_head_the_stand_in_camera_and_the_overlay_at_one_topic():
    """A camera driver publishes outside the robot's namespace; camera_topic:= reaches it without `ros2 run`."""
    given = {"bundle": "/data/bundle", "namespace": "robot1", "camera_topic": "/camera/color/image_raw"}
    started, _ = launch_model.processes(ROOT / "launch" / "pipeline.launch.py", given, {"splitcomp_tools": ROOT})
    remaps = {p.executable: dict(p.remappings) for p in started}
    for executable in ("head_node", "image_source", "overlay"):
        assert remaps[executable]["image_raw"] == "/camera/color/image_raw", executable
    assert remaps["head_node"]["image_raw/compressed"] == "/camera/color/image_raw/compressed"
    assert remaps["tail_node"] == {}
    default, _ = launch_model.processes(ROOT / "launch" / "robot.launch.py", {"bundle": "b"}, {"splitcomp_tools": ROOT})
    assert dict(default[0].remappings)["image_raw"] == "image_raw"  # by default: image_raw in the namespace, as before

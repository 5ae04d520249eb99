"""Launch files, checked without `launch` (not on PyPI): they parse, and everything they name exists.

Where launch_ros imports (a system ROS install), generate_launch_description() is also loaded.
"""

import ast
import importlib.util
import pathlib
import re

import pytest

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


def test_the_three_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} == {"robot.launch.py", "edge.launch.py", "pipeline.launch.py"}


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
    text = (ROOT / "launch" / "pipeline.launch.py").read_text()
    assert len(list(calls(ast.parse(text), "IncludeLaunchDescription"))) == 1  # one helper includes both
    assert '"robot.launch.py", image_source="true"' in text and '"edge.launch.py"' in text
    pipeline_nodes = {keyword_strings(c)["executable"] for c in calls(ast.parse(text), "Node")}
    assert pipeline_nodes == {"overlay", "rviz2"}
    assert not declared_arguments(ROOT / "launch" / "pipeline.launch.py") & {"bundle", "head_config", "tail_config"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_config_files_exist(path):
    for name in re.findall(r'"([\w.]+\.(?:yaml|rviz))"', path.read_text()):
        assert (ROOT / "config" / name).is_file(), f"{path.name} names config/{name}, which is missing"


def test_readme_documents_every_launch_argument():
    readme = (ROOT / "README.md").read_text()
    for path in LAUNCH_FILES:
        for argument in declared_arguments(path):
            assert f"{argument}:=" in readme, f"README does not show the {path.name} argument {argument}:="


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

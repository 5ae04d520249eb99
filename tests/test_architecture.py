"""The import rules of the README's Architecture section, enforced on the source (read with ast, nothing is run).

- splitcomp_core imports nothing of ROS: no rclpy, no message packages, no other splitcomp package.
- splitcomp_ros imports the core and the messages, never the tools or a node package.
- the node packages import the core, splitcomp_ros and the messages, never the tools or each other.
- splitcomp_tools never imports a node package; its rooms model/, frames/, shapes/ and studio/ need no ROS,
  except studio/live.py (the studio's Live view), which the studio imports only when started with --ros.
- no module imports, directly or through others, a module that imports it back.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("splitcomp_core", "splitcomp_ros", "splitcomp_head_node", "splitcomp_tail_node", "splitcomp_tools")
ROS_GRAPH = {
    "rclpy",
    "rcl_interfaces",
    "builtin_interfaces",
    "std_msgs",
    "sensor_msgs",
    "diagnostic_msgs",
    "vision_msgs",
    "cv_bridge",
    "launch",
    "launch_ros",
    "splitcomp_msgs",
    "splitcomp_ros",
}
ALLOWED = {
    "splitcomp_core": {"splitcomp_core"},
    "splitcomp_ros": {"splitcomp_core", "splitcomp_ros", "splitcomp_msgs"},
    "splitcomp_head_node": {"splitcomp_core", "splitcomp_ros", "splitcomp_msgs", "splitcomp_head_node"},
    "splitcomp_tail_node": {"splitcomp_core", "splitcomp_ros", "splitcomp_msgs", "splitcomp_tail_node"},
    "splitcomp_tools": {"splitcomp_core", "splitcomp_ros", "splitcomp_msgs", "splitcomp_tools"},
}
ROS_FREE_ROOMS = ("splitcomp_tools.model", "splitcomp_tools.frames", "splitcomp_tools.shapes", "splitcomp_tools.studio")
ROS_IN_ROS_FREE_ROOMS = {
    "splitcomp_tools.studio.live": "splitcomp_tools.studio"
}  # module -> the room importing it lazily


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts[1:])  # drop the colcon package folder
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, pathlib.Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package / package).rglob("*.py"))}


def imports_of(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if not node.module or node.level:
        return set()
    return {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}


def imports(path: pathlib.Path) -> set[str]:
    """Every module an import statement names, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= imports_of(node)
    return found


MODULES = sources()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_package_imports_only_what_its_layer_may(module):
    package = module.split(".")[0]
    theirs = {name.split(".")[0] for name in imports(MODULES[module]) if name.startswith("splitcomp_")}
    assert theirs <= ALLOWED[package], f"{module} imports {sorted(theirs - ALLOWED[package])}"
    if package == "splitcomp_core" or (module.startswith(ROS_FREE_ROOMS) and module not in ROS_IN_ROS_FREE_ROOMS):
        ros = {name.split(".")[0] for name in imports(MODULES[module])} & ROS_GRAPH
        assert not ros, f"{module} must run without ROS but imports {sorted(ros)}"


@pytest.mark.parametrize("ros_module", sorted(ROS_IN_ROS_FREE_ROOMS))
def test_a_ros_module_of_a_ros_free_room_is_imported_only_inside_functions(ros_module):
    room = ROS_IN_ROS_FREE_ROOMS[ros_module]
    for module, path in MODULES.items():
        if module.startswith(room):
            at_import = {
                name
                for node in ast.parse(path.read_text()).body  # module level only, not inside functions
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for name in imports_of(node)
            }
            assert ros_module not in at_import, (
                f"{module} imports {ros_module} when it loads; import it where ROS is asked for"
            )


def test_no_import_cycles():
    graph = {m: {n for n in imports(p) if n in MODULES and n != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [module, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_rules_see_every_room():
    rooms = {m.rsplit(".", 1)[0] for m in MODULES if m.count(".") >= 2}
    assert {
        "splitcomp_tools.model",
        "splitcomp_tools.frames",
        "splitcomp_tools.shapes",
        "splitcomp_tools.nodes",
        "splitcomp_tools.run",
        "splitcomp_tools.studio",
    } <= rooms

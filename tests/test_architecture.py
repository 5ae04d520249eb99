"""The import rules of the README's Architecture section, enforced on the source (read with ast, nothing is run).

- splitcomp_core imports nothing of ROS: no rclpy, no message packages, no other splitcomp package.
- splitcomp_ros imports the core and the messages, never the tools or a node package.
- the node packages import the core, splitcomp_ros and the messages, never the tools or each other.
- splitcomp_tools never imports a node package; its rooms cli.py, draw/, frames/, model/, report/, shapes/ and
  studio/ need no ROS, except studio/live.py (the studio's Live view), which the studio imports only when
  started with --ros.
- splitcomp_tools is rooms on floors, bottom to top: cli.py, draw/, frames/, model/, report/, shapes/, nodes/,
  run/, demo/, studio/. A module imports its own room or a room below, never one above; cli.py imports
  only the core. The commands (the modules at the package's top) stand on all rooms: nothing imports a
  command, not even another command.
- no module imports, directly or through others, a module that imports it back.
- console_scripts and the commands cannot drift: each tool's entry is `splitcomp_tools.<tool>:main`, a command
  that defines `main` and runs it as `python -m splitcomp_tools.<tool>`, and each command is a tool; a room that
  is a tool (the studio, the demo) has its command module and a `__main__.py` that runs it.
- no module over 500 lines, no function over 80 (tests aside).
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
ROS_FREE_ROOMS = tuple(
    f"splitcomp_tools.{room}" for room in ("cli", "draw", "frames", "model", "report", "shapes", "studio")
)
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
    rooms = {room_of(m) for m in MODULES if m.startswith(f"{TOOLS}.")}
    assert {"cli", "draw", "frames", "model", "shapes", "nodes", "run", "demo", "studio", COMMAND} <= rooms
    assert {"bench", "testbed", "ros", "image_source", "overlay", "train_shapes"} <= set(COMMANDS)


# --- the rooms of splitcomp_tools, on floors ---------------------------------------------------------------

TOOLS = "splitcomp_tools"
FLOORS = (
    "cli",
    "draw",
    "frames",
    "model",
    "report",
    "cli_options",
    "shapes",
    "nodes",
    "run",
    "demo",
    "studio",
)  # bottom to top
COMMAND = "command"  # a module at the package's top: stands on every room
COMMANDS = sorted(
    p.stem for p in (ROOT / TOOLS / TOOLS).glob("*.py") if p.stem != "__init__" and not p.stem.startswith("cli")
)
COMMAND_ROOMS = {"studio": "server", "demo": "command"}  # a room that is a tool -> its command module


def room_of(module: str) -> str:
    """The room of a splitcomp_tools module: its folder, `cli`, or COMMAND for the package's top modules."""
    name = module.split(".")[1]
    return COMMAND if name in COMMANDS else name


def tools_imports(module: str) -> set[str]:
    """The splitcomp_tools modules `module` imports (an imported name resolves to the module that holds it)."""
    found = set()
    for name in imports(MODULES[module]):
        parts = name.split(".")
        held = next((".".join(parts[:n]) for n in range(len(parts), 1, -1) if ".".join(parts[:n]) in MODULES), None)
        if parts[0] == TOOLS and held is not None and held != module:
            found.add(held)
    return found


def test_every_room_has_a_floor():
    rooms = {room_of(m) for m in MODULES if m.startswith(f"{TOOLS}.")}
    assert rooms - {COMMAND} <= set(FLOORS), f"give {sorted(rooms - {COMMAND} - set(FLOORS))} a floor in FLOORS"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(f"{TOOLS}.")))
def test_an_import_points_to_its_own_room_or_one_below(module):
    room = room_of(module)
    targets = {target: room_of(target) for target in tools_imports(module)}
    if room == "cli":
        theirs = {name.split(".")[0] for name in imports(MODULES[module]) if name.startswith("splitcomp_")}
        assert theirs <= {"splitcomp_core"}, f"cli.py imports only the core, not {sorted(theirs)}"
    commands = sorted(target for target, floor in targets.items() if floor == COMMAND)
    assert not commands, f"{module} imports the command {commands}: move what it needs into a room"
    if room != COMMAND:
        above = sorted(t for t, floor in targets.items() if FLOORS.index(floor) > FLOORS.index(room))
        assert not above, f"{module} ({room}/) imports {above}, a floor above: move it down or the caller up"


# --- console_scripts and the commands -------------------------------------------------------------------------


def console_scripts() -> dict[str, str]:
    """name -> target of splitcomp_tools/setup.py's console_scripts, read with ast."""
    for node in ast.walk(ast.parse((ROOT / TOOLS / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return dict(tuple(part.strip() for part in entry.split("=")) for entry in entries)
    raise AssertionError("splitcomp_tools/setup.py has no entry_points")


def runs_main(path: pathlib.Path) -> bool:
    """The module ends in `if __name__ == "__main__":` calling main() (`python -m` runs it)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) and "__name__" in ast.unparse(node.test):
            calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
            return any(c.func.id == "main" for c in calls)
    return False


def defines_main(path: pathlib.Path) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in ast.parse(path.read_text()).body)


@pytest.mark.parametrize("tool, target", sorted(console_scripts().items()))
def test_each_console_script_is_a_command_that_python_m_runs(tool, target):
    module, _, function = target.partition(":")
    assert function == "main", f"{tool} = {target}: point it at the command's main"
    if tool in COMMAND_ROOMS:
        assert module == f"{TOOLS}.{tool}.{COMMAND_ROOMS[tool]}", f"{tool} = {target}"
        runner = ROOT / TOOLS / TOOLS / tool / "__main__.py"
        assert f"{module}.main" in imports(runner) and runs_main(runner), f"{runner} must run {module}'s main"
    else:
        assert module == f"{TOOLS}.{tool}", f"{tool} = {target}: point it at {TOOLS}.{tool}:main"
        assert tool in COMMANDS, f"{TOOLS}/{tool}.py, the command, is missing"
        assert runs_main(MODULES[module]), f'{module} must end in `if __name__ == "__main__": ... main()`'
    assert defines_main(MODULES[module]), f"{module} defines no main()"


def test_each_command_is_a_console_script():
    assert set(COMMANDS) | set(COMMAND_ROOMS) == set(console_scripts()), "setup.py's console_scripts and the commands"


# --- sizes --------------------------------------------------------------------------------------------------------

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


@pytest.mark.parametrize("path", sorted(MODULES.values()), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_modules_and_functions_are_small(path):
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split it by idea (at most {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"

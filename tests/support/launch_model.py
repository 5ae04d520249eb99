"""What a launch file declares, includes and starts, read from its source with ast (no `launch` import).

`launch` and `launch_ros` are not on PyPI (a PyPI package named launch is unrelated), so the tests read
the launch files instead of running them. The reader knows the constructs splitcomp's launch files use:
DeclareLaunchArgument, GroupAction, PushRosNamespace, Node, OpaqueFunction, IfCondition/UnlessCondition,
LaunchConfiguration, os.path.join, get_package_share_directory, simple assignments, and
IncludeLaunchDescription written directly or through a helper function of the file that forwards its
keyword arguments (`include("robot.launch.py", bundle=bundle)`). Anything else in a launch description
raises LaunchReadError with the file and line, so a new launch file is either understood or fails loudly.

Two uses: the include rule of `ros2 launch` (every include passes every argument the included file
requires: launch/actions/include_launch_description.py, IncludeLaunchDescription.execute), and the list
of processes a launch would start for given arguments, which the test bed runs where launch_ros is absent.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

TRUE, FALSE = ("true", "1"), ("false", "0")  # what launch's IfCondition accepts, case-insensitively


class LaunchReadError(Exception):
    """A launch file uses a construct this reader does not model, or asks for a value it cannot give."""


@dataclasses.dataclass(frozen=True)
class Arg:
    """LaunchConfiguration(name): the value of a launch argument, known only when the launch runs."""

    name: str


@dataclasses.dataclass(frozen=True)
class Share:
    """get_package_share_directory(package)."""

    package: str


@dataclasses.dataclass(frozen=True)
class Join:
    """os.path.join(*parts)."""

    parts: tuple


@dataclasses.dataclass(frozen=True)
class Source:
    """PythonLaunchDescriptionSource(path)."""

    path: Any


@dataclasses.dataclass(frozen=True)
class Condition:
    """IfCondition(value), or UnlessCondition when `negate`."""

    value: Any
    negate: bool


@dataclasses.dataclass
class Declared:
    name: str
    default: Any  # None: required
    line: int

    @property
    def required(self) -> bool:
        return self.default is None


@dataclasses.dataclass
class Include:
    file: str  # the included launch file's name, e.g. robot.launch.py
    arguments: dict[str, Any]  # what this include passes to it
    line: int


@dataclasses.dataclass
class NodeEntry:
    package: str
    executable: str
    name: str | None
    parameters: list  # a file (str/Join/Arg) or a dict of values each
    arguments: list
    remappings: list  # [from, to] pairs; a list as `to` is concatenated, as launch does with substitutions
    condition: Condition | None
    namespace: Any  # None: no PushRosNamespace around it
    line: int


@dataclasses.dataclass
class LaunchFile:
    path: Path
    entities: list  # Declared, Include, NodeEntry and ("opaque", function name, line), in launch order

    def declared(self) -> dict[str, Declared]:
        return {e.name: e for e in self.entities if isinstance(e, Declared)}

    def includes(self) -> list[Include]:
        return [e for e in self.entities if isinstance(e, Include)]

    def nodes(self) -> list[NodeEntry]:
        return [e for e in self.entities if isinstance(e, NodeEntry)]

    def opaque_functions(self) -> list[str]:
        return [e[1] for e in self.entities if isinstance(e, tuple) and e[0] == "opaque"]


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


class _Reader:
    """Evaluates generate_launch_description()'s body symbolically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        tree = ast.parse(path.read_text())
        functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"]
        if not functions:
            raise LaunchReadError(f"{path.name}: no generate_launch_description()")
        self.body = functions[0]
        self.symbols: dict[str, Any] = {}
        self.helpers: dict[str, ast.FunctionDef] = {}  # local functions that include a launch file

    def fail(self, node: ast.AST, what: str) -> LaunchReadError:
        return LaunchReadError(f"{self.path.name}:{getattr(node, 'lineno', '?')}: {what}: {ast.unparse(node)[:120]}")

    def read(self) -> LaunchFile:
        for statement in self.body.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if not isinstance(target, ast.Name):
                    raise self.fail(statement, "only `name = value` assignments are read")
                self.symbols[target.id] = self.value(statement.value)
            elif isinstance(statement, ast.FunctionDef):
                if not any(_name(c.func) == "IncludeLaunchDescription" for c in _calls(statement)):
                    raise self.fail(statement, "a local function that is not an include helper")
                self.helpers[statement.name] = statement
            elif isinstance(statement, ast.Return):
                call = statement.value
                if not (isinstance(call, ast.Call) and _name(call.func) == "LaunchDescription" and call.args):
                    raise self.fail(statement, "return LaunchDescription([...]) expected")
                return LaunchFile(self.path, self.entities(call.args[0], namespace=None))
            elif not isinstance(statement, ast.Expr):  # a docstring
                raise self.fail(statement, "a statement the reader does not model")
        raise LaunchReadError(f"{self.path.name}: generate_launch_description() returns no LaunchDescription")

    def entities(self, node: ast.expr, namespace: Any) -> list:
        if not isinstance(node, ast.List):
            raise self.fail(node, "a list of launch entities expected")
        out: list = []
        for item in node.elts:
            if not isinstance(item, ast.Call):
                raise self.fail(item, "a launch entity expected")
            kind, kwargs = _name(item.func), {k.arg: k.value for k in item.keywords}
            if kind == "DeclareLaunchArgument":
                default = kwargs.get("default_value")
                out.append(
                    Declared(self.value(item.args[0]), None if default is None else self.value(default), item.lineno)
                )
            elif kind == "GroupAction":
                out += self.entities(item.args[0] if item.args else kwargs["actions"], namespace)
            elif kind == "PushRosNamespace":
                namespace = self.value(item.args[0])
            elif kind == "Node":
                out.append(self.node(item, kwargs, namespace))
            elif kind == "OpaqueFunction":
                out.append(("opaque", _name(kwargs["function"]), item.lineno))
            elif kind == "IncludeLaunchDescription":
                out.append(self.include(item.args[0], kwargs.get("launch_arguments"), item.lineno))
            elif kind in self.helpers:
                out.append(self.helper_include(item))
            else:
                raise self.fail(item, "a launch entity the reader does not model")
        return out

    def node(self, call: ast.Call, kwargs: dict, namespace: Any) -> NodeEntry:
        condition = kwargs.get("condition")
        if condition is not None:
            if not (isinstance(condition, ast.Call) and _name(condition.func) in ("IfCondition", "UnlessCondition")):
                raise self.fail(condition, "only IfCondition/UnlessCondition are read")
            condition = Condition(self.value(condition.args[0]), _name(condition.func) == "UnlessCondition")
        return NodeEntry(
            package=self.value(kwargs["package"]),
            executable=self.value(kwargs["executable"]),
            name=self.value(kwargs["name"]) if "name" in kwargs else None,
            parameters=self.value(kwargs["parameters"]) if "parameters" in kwargs else [],
            arguments=self.value(kwargs["arguments"]) if "arguments" in kwargs else [],
            remappings=self.value(kwargs["remappings"]) if "remappings" in kwargs else [],
            condition=condition,
            namespace=namespace,
            line=call.lineno,
        )

    def include(self, source: ast.expr, arguments: ast.expr | None, line: int) -> Include:
        described = self.value(source)
        if not isinstance(described, Source):
            raise self.fail(source, "PythonLaunchDescriptionSource(path) expected")
        path = described.path
        last = path.parts[-1] if isinstance(path, Join) else path
        if not (isinstance(last, str) and last.endswith(".launch.py")):
            raise self.fail(source, "the included file's name must be written in the launch file")
        return Include(last, self.arguments(arguments), line)

    def arguments(self, node: ast.expr | None) -> dict[str, Any]:
        """launch_arguments as {"name": value}.items() or [("name", value), ...]."""
        if node is None:
            return {}
        if isinstance(node, ast.Call) and _name(node.func) == "items" and isinstance(node.func, ast.Attribute):
            node = node.func.value
        if isinstance(node, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Tuple) for e in node.elts):
            return {self.value(e.elts[0]): self.value(e.elts[1]) for e in node.elts}  # type: ignore[attr-defined]
        raise self.fail(node, "launch_arguments must be a dict literal (.items()) or a list of pairs")

    def helper_include(self, call: ast.Call) -> Include:
        """include("x.launch.py", a=..., b=...) through a local helper that forwards **kwargs to the include."""
        helper = self.helpers[_name(call.func)]
        inner = next(c for c in _calls(helper) if _name(c.func) == "IncludeLaunchDescription")
        forwarded = {k.arg: k.value for k in inner.keywords}.get("launch_arguments")
        kwargs_name = helper.args.kwarg.arg if helper.args.kwarg else None
        if not (
            kwargs_name
            and isinstance(forwarded, ast.Call)
            and isinstance(forwarded.func, ast.Attribute)
            and ast.unparse(forwarded.func.value) == kwargs_name
        ):
            raise self.fail(helper, "an include helper must pass launch_arguments=<its **kwargs>.items()")
        names = [c.value for c in call.args if isinstance(c, ast.Constant) and str(c.value).endswith(".launch.py")]
        if len(names) != 1:
            raise self.fail(call, "an include helper call names one .launch.py file as a string")
        return Include(names[0], {k.arg: self.value(k.value) for k in call.keywords if k.arg}, call.lineno)

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.symbols:
                raise self.fail(node, "a name the reader has no value for")
            return self.symbols[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
        if isinstance(node, ast.Call):
            kind, args = _name(node.func), [self.value(a) for a in node.args]
            if kind == "LaunchConfiguration":
                return Arg(args[0])
            if kind == "PythonLaunchDescriptionSource":
                return Source(args[0])
            if kind == "get_package_share_directory":
                return Share(args[0])
            if kind == "join" and ast.unparse(node.func) == "os.path.join":
                return Join(tuple(args))
        raise self.fail(node, "a value the reader does not model")


def _calls(node: ast.AST):
    return (n for n in ast.walk(node) if isinstance(n, ast.Call))


@functools.cache
def read(path: Path) -> LaunchFile:
    """The launch file at `path`, read once."""
    return _Reader(Path(path)).read()


def include_rule_violations(path: Path) -> list[str]:
    """Each include of `path` that leaves out an argument the included file (or one it includes) requires.

    ros2 launch checks an include against the names given to that include; names a nested include passes
    count for that nested file's arguments. What the including file itself received does not count.
    """
    problems = []
    for include in read(path).includes():
        for name, chain in required_arguments(path.parent / include.file):
            given = set(include.arguments) | {n for inner in chain for n in inner.arguments}
            if name not in given:
                via = "".join(f" (through {inner.file})" for inner in chain)
                problems.append(
                    f"{path.name}:{include.line}: includes {include.file} without its required argument "
                    f"'{name}'{via}; given: {sorted(include.arguments)}"
                )
    return problems


def required_arguments(path: Path, chain: tuple = ()) -> list[tuple[str, tuple]]:
    """(name, includes on the way) for each required argument of `path` and of the files it includes."""
    launch = read(path)
    found = [(d.name, chain) for d in launch.declared().values() if d.required]
    for include in launch.includes():
        found += required_arguments(path.parent / include.file, (*chain, include))
    return found


@dataclasses.dataclass
class Process:
    """A node a launch would start: `ros2 run`'s executable with these --ros-args."""

    package: str
    executable: str
    name: str | None
    namespace: str
    params_files: list[str]
    params: dict[str, str]
    arguments: list[str]
    remappings: list[tuple[str, str]]

    def ros_args(self) -> list[str]:
        """The remaps a launch_ros Node adds: the node's name and namespace, then its remappings."""
        remaps = [f"__node:={self.name}"] if self.name else []
        remaps += [f"__ns:=/{self.namespace.strip('/')}"] if self.namespace.strip("/") else []
        remaps += [f"{source}:={target}" for source, target in self.remappings]
        return [a for r in remaps for a in ("-r", r)]


def processes(path: Path, given: dict[str, str], share: dict[str, Path]) -> tuple[list[Process], list[str]]:
    """The nodes `ros2 launch <path> name:=value ...` would start, and the OpaqueFunctions it would run, in order.

    Launch configurations are global, as in launch: a value given at the top reaches the included files.
    `share` maps a package to its share folder (get_package_share_directory).
    """
    missing = [name for name, chain in required_arguments(path) if name not in given and not chain]
    if missing:
        raise LaunchReadError(f"{path.name} needs {missing}")
    started: list[Process] = []
    opaque: list[str] = []
    _walk(path, dict(given), share, started, opaque)
    return started, opaque


def _walk(path: Path, configurations: dict, share: dict, started: list, opaque: list) -> None:
    for entity in read(path).entities:
        if isinstance(entity, Declared):
            if entity.name not in configurations:
                configurations[entity.name] = _resolve(entity.default, configurations, share)
        elif isinstance(entity, Include):
            configurations.update({k: _resolve(v, configurations, share) for k, v in entity.arguments.items()})
            _walk(path.parent / entity.file, configurations, share, started, opaque)
        elif isinstance(entity, NodeEntry):
            if entity.condition is None or _holds(entity.condition, configurations, share):
                started.append(_process(entity, configurations, share))
        else:
            opaque.append(entity[1])


def _process(node: NodeEntry, configurations: dict, share: dict) -> Process:
    files, params = [], {}
    for parameter in node.parameters:
        if isinstance(parameter, dict):
            params.update({k: _resolve(v, configurations, share) for k, v in parameter.items()})
        else:
            files.append(_resolve(parameter, configurations, share))
    return Process(
        node.package,
        node.executable,
        node.name,
        _resolve(node.namespace, configurations, share) if node.namespace is not None else "",
        files,
        params,
        [_resolve(a, configurations, share) for a in node.arguments],
        [(_text(s, configurations, share), _text(t, configurations, share)) for s, t in node.remappings],
    )


def _text(value: Any, configurations: dict, share: dict) -> str:
    """A substitution as launch performs it: a list is the concatenation of its parts."""
    resolved = _resolve(value, configurations, share)
    return "".join(map(str, resolved)) if isinstance(resolved, list) else str(resolved)


def _holds(condition: Condition, configurations: dict, share: dict) -> bool:
    text = str(_resolve(condition.value, configurations, share)).lower()
    if text not in TRUE + FALSE:
        raise LaunchReadError(f"a condition evaluates to {text!r}; launch accepts true/false/1/0")
    return (text in TRUE) != condition.negate


def _resolve(value: Any, configurations: dict, share: dict) -> Any:
    if isinstance(value, Arg):
        if value.name not in configurations:
            raise LaunchReadError(f"launch configuration {value.name!r} is not set")
        return configurations[value.name]
    if isinstance(value, Share):
        return str(share[value.package])
    if isinstance(value, Join):
        return os.path.join(*(str(_resolve(p, configurations, share)) for p in value.parts))
    if isinstance(value, list):
        return [_resolve(v, configurations, share) for v in value]
    return value

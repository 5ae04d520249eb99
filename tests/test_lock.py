"""The locks in requirements/lock/ pin every installed version, and agree with the requirement files.

setup.sh installs with the lock of its ROS distribution and Python as constraints, so a fresh venv
holds exactly the lock; a dependency added to a requirement file without a new lock fails here.
"""

import importlib.util
import os
import pathlib
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOCKS = sorted((ROOT / "requirements" / "lock").glob("ros-*-py*.txt"))
_spec = importlib.util.spec_from_file_location("splitcomp_lock", ROOT / "scripts" / "lock.py")
assert _spec is not None and _spec.loader is not None
lock_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock_script)


def read_lock(path: pathlib.Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def direct_pins(path: pathlib.Path, python_version: str) -> list[Requirement]:
    """The requirements of a requirement file that hold on that Python (markers evaluated)."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"python_version": python_version}):
                found.append(req)
    return found


def test_there_is_a_lock_for_each_pypi_ros_distribution():
    assert {p.name.split("-")[1] for p in LOCKS} == {"jazzy", "kilted"}


@pytest.mark.parametrize("lock", LOCKS, ids=[p.stem for p in LOCKS])
def test_the_lock_agrees_with_every_direct_pin(lock):
    distro, tag = lock.stem.split("-")[1:]
    python_version = f"{tag[2]}.{tag[3:]}"
    pins = read_lock(lock)
    files = ["python.txt", f"ros-{distro}.txt", "test.txt", "tools.txt", "studio.txt", "no-deps.txt"]
    wrong = []
    for name in files:
        for req in direct_pins(ROOT / "requirements" / name, python_version):
            key = canonicalize_name(req.name)
            if key == "setuptools":
                continue  # pip leaves it out of a freeze; ros-jazzy.txt pins it directly
            if key not in pins or not req.specifier.contains(pins[key], prereleases=True):
                wrong.append(f"{name}: {req} but the lock has {pins.get(key, 'nothing')}")
    assert not wrong, "; ".join(wrong) + f" (regenerate {lock.name} with scripts/lock.py)"


def test_this_environment_is_exactly_its_lock():
    if os.environ.get("ROS_DISTRO"):
        pytest.skip("a system ROS 2 is sourced: setup.sh installs direct pins only there")
    tag, installed = lock_script.installed(pathlib.Path(sys.prefix))
    distro = lock_script.ros_distribution(installed)
    lock = ROOT / "requirements" / "lock" / f"ros-{distro}-{tag}.txt"
    if not lock.exists():
        pytest.skip(f"no lock for {distro} on {tag}: setup.sh installs direct pins only there")
    pins = read_lock(lock)
    have = {canonicalize_name(n): v for n, v in installed.items()}
    differ = sorted(
        f"{n}: {have.get(n, 'absent')} installed, {pins.get(n, 'absent')} locked"
        for n in pins.keys() | have.keys()
        if have.get(n) != pins.get(n)
    )
    assert not differ, "; ".join(differ[:20]) + " (rerun scripts/setup.sh, or update the lock with scripts/lock.py)"


def test_lock_script_refuses_what_is_not_a_pypi_ros_venv(tmp_path, capsys):
    system_python = pathlib.Path("/usr/bin/python3")  # a real interpreter without ROS 2 in it
    if not system_python.exists():
        pytest.skip("no /usr/bin/python3 to stand for a venv without ROS 2")
    locks = {p: p.read_bytes() for p in LOCKS}
    not_ros = tmp_path / "plain"
    (not_ros / "bin").mkdir(parents=True)
    (not_ros / "bin" / "python").symlink_to(system_python)
    for argv, says in (([str(tmp_path)], "not a virtual environment"), ([str(not_ros)], "holds no ROS 2 from PyPI")):
        assert lock_script.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:") and says in err, err
    assert {p: p.read_bytes() for p in LOCKS} == locks


def test_lock_script_help_exits_0(capsys):
    with pytest.raises(SystemExit) as end:
        lock_script.main(["--help"])
    assert end.value.code == 0 and "usage: lock.py" in capsys.readouterr().out

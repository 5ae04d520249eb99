"""The commands the README shows run here: each tool answers --help, analyze runs for real,
make targets exist, and the scripts and files named exist."""

import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_lines():
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [
            line.split("  #")[0].strip()
            for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    return lines


TOOL_LINES = [line for line in command_lines() if line.startswith("python -m splitcomp_tools.")]
MAKE_LINES = [line for line in command_lines() if line.startswith("make ")]


def test_the_readme_shows_commands():
    assert len(TOOL_LINES) >= 6 and {"make demo", "make test"} <= {line.split("#")[0].strip() for line in MAKE_LINES}


@pytest.mark.parametrize("line", TOOL_LINES)
def test_tool_answers_help(line):
    words = shlex.split(line)
    module = words[2]
    argv = [sys.executable, "-m", module] + (words[3:4] if module.endswith(".bench") else []) + ["--help"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


def test_analyze_example_runs_on_the_shipped_model():
    (line,) = [line for line in TOOL_LINES if ".analyze " in line]
    result = subprocess.run(
        [sys.executable, *shlex.split(line)[1:]], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "/stage2/block1/relu/Relu_output_0" in result.stdout


@pytest.mark.parametrize("line", MAKE_LINES)
def test_make_targets_exist(line):
    target = line.split()[1]
    result = subprocess.run(["make", "-n", target], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_paths_named_in_commands_exist():
    for path in (
        "scripts/setup.sh",
        "scripts/env.sh",
        "docker/compose.yaml",
        "docker/README.md",
        "docs/overlay.png",
        "docs/calibration.png",
        "docs/studio.png",
        "config/splitcomp.rviz",
    ):
        assert path in README and (ROOT / path).exists(), path

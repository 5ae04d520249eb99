"""The commands the README and docs/ show run here: each tool answers --help, analyze runs for real,
make targets exist, and the scripts and files named exist."""

import itertools
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {path: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}  # the pages the README links to


def command_lines(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [
            line.split("  #")[0].strip()
            for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    return lines


ALL_LINES = [line for text in (README, *DOCS.values()) for line in command_lines(text)]
README_TOOL_LINES = [line for line in command_lines(README) if line.startswith("python -m splitcomp_tools.")]
TOOL_LINES = [line for line in ALL_LINES if line.startswith("python -m splitcomp_tools.")]
MAKE_LINES = sorted({line for line in ALL_LINES if line.startswith("make ")})


def help_argv(line: str) -> tuple[str, ...]:
    """The module (and bench's subcommand) a command line runs: what `--help` is asked of."""
    words = shlex.split(line)
    module = words[2]
    return (module, *(words[3:4] if module.endswith(".bench") else []))


HELP_ARGVS = sorted({help_argv(line) for line in TOOL_LINES})  # each tool once, however many lines show it


def named_in_docs(path: str) -> bool:
    """The README names it from the repository root, a page in docs/ from its own folder."""
    return path in README or any(os.path.relpath(path, "docs") in text or path in text for text in DOCS.values())


def test_the_readme_shows_commands():
    assert len(README_TOOL_LINES) >= 6
    assert {"make demo", "make test", "make test-fast"} <= {line.split("#")[0].strip() for line in MAKE_LINES}


# Each tool as `python -m` runs it (runpy), all in one interpreter: the imports are paid once, not per tool.
ASK_HELP = """
import contextlib, io, json, runpy, sys
answers = {}
for argv in json.loads(sys.argv[1]):
    sys.argv, printed, code = [*argv, "--help"], io.StringIO(), "returned"
    with contextlib.redirect_stdout(printed):
        try:
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
    answers[" ".join(argv)] = [code, printed.getvalue()]
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def help_answers() -> dict:
    result = subprocess.run(
        [sys.executable, "-c", ASK_HELP, json.dumps(HELP_ARGVS)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", HELP_ARGVS, ids=" ".join)
def test_tool_answers_help(module, help_answers):
    code, printed = help_answers[" ".join(module)]
    assert code in (0, None), (code, printed)
    assert "usage" in printed.lower()


def test_analyze_example_runs_on_the_shipped_model():
    (line,) = [line for line in README_TOOL_LINES if ".analyze " in line]
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
        assert named_in_docs(path) and (ROOT / path).exists(), path


def test_the_image_files_the_classify_example_names_exist():
    """The example runs as written: the images it classifies ship with the repository."""
    examples = [shlex.split(line) for line in TOOL_LINES if ".classify " in line and "--frames" not in line]
    assert examples
    for words in examples:
        images = list(itertools.takewhile(lambda w: not w.startswith("-"), words[4:]))  # after the bundle
        assert images and all((ROOT / image).is_file() for image in images), images


def test_the_readme_links_every_page_in_docs():
    for path in DOCS:
        assert f"](docs/{path.name})" in README, f"README does not link docs/{path.name}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_relative_links_lead_to_files(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name} links {target}, which is missing"

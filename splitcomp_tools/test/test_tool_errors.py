"""Every way the tools were seen to fail badly: now one `error:` line, exit 2, no traceback, outputs unchanged.

Each case runs the tool's real `main` on real files. The errors that need a read-only file system
run in a private mount namespace (unshare) with a read-only tmpfs, when the machine allows one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from splitcomp_core.bundle import MANIFEST_FILE
from splitcomp_tools import analyze, bench, calibrate, classify, export, plan, split, testbed, train_shapes
from splitcomp_tools.demo import command as demo
from splitcomp_tools.run import bench_codec, bench_planner
from splitcomp_tools.studio import server as studio_server

MODEL = Path(__file__).resolve().parents[1] / "models" / "shapes" / "model.onnx"
CUT = "/stage2/block1/relu/Relu_output_0"


def snapshot(paths):
    """What each path holds now (None if absent), to compare after the tool ran."""
    state = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            state[path] = {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
        else:
            state[path] = path.read_bytes() if path.exists() else None
    return state


def assert_refused(main, argv, capsys, unchanged=(), says=()):
    """rc 2, exactly one line starting with `error:` (first), no traceback, the paths as they were."""
    before = snapshot(unchanged)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err, err
    for fragment in says:
        assert fragment in errors[0], err
    assert snapshot(unchanged) == before, "an output changed although the tool failed"
    return errors[0]


@pytest.fixture
def bundle(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle.path, copy)
    return copy


@pytest.mark.parametrize("name", ["garbage.mp4", "empty.avi"])
def test_a_video_that_does_not_play_is_one_error_line_in_every_tool(bad_videos, bundle, tmp_path, capsys, name):
    video, says = str(bad_videos / name), [name]
    calibrate_argv = [str(bundle), "--images", "generator", "--count", "2", "--eval-images", f"photos:test,{video}"]
    assert_refused(calibrate.main, [str(bundle), "--images", video, "--count", "2"], capsys, [bundle], says)
    assert_refused(calibrate.main, calibrate_argv, capsys, [bundle], says)
    assert_refused(classify.main, [str(bundle), "--frames", video], capsys, [bundle], says)
    bench_argv = ["--bundle", str(bundle), "--eval-images", video, "--repeats", "1"]
    assert_refused(bench_codec.main, bench_argv, capsys, [bundle], says)
    out = tmp_path / "plan"  # plan says what it is measuring before it opens the frames
    assert plan.main([str(MODEL), "--images", video, "--agreement", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [err.splitlines()[-1]], err
    assert name in err and "Traceback" not in err and not out.exists()
    assert "frames would be judged" not in err  # the video itself is what was refused


# --- OSErrors other than not-found / is-a-directory / permission -------------------------------


def test_a_file_name_too_long_is_one_line(tmp_path, capsys):
    long = tmp_path / ("a" * 250 + ".png")  # the name fits; its temp file's name does not (ENAMETOOLONG)
    assert_refused(analyze.main, [str(MODEL), "--plot", str(long)], capsys, [tmp_path], ["name"])


def test_a_path_through_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = blocker / "bundle"  # ENOTDIR
    assert_refused(split.main, [str(MODEL), "--at", CUT, "--out", str(out)], capsys, [tmp_path])
    assert_refused(export.main, ["efficientnet_lite0", "--out", str(blocker / "m.onnx")], capsys, [tmp_path])


def test_an_empty_or_current_directory_out_is_refused(bundle, capsys, monkeypatch):
    monkeypatch.chdir(bundle)
    for out in ("", "."):
        assert_refused(split.main, [str(MODEL), "--at", CUT, "--out", out, "--overwrite"], capsys, [bundle])


def test_out_holding_the_model_is_refused(tmp_path, capsys):
    folder = tmp_path / "work"
    folder.mkdir()
    model = folder / "model.onnx"
    shutil.copy(MODEL, model)
    assert_refused(
        split.main,
        [str(model), "--at", CUT, "--out", str(folder), "--overwrite"],
        capsys,
        [folder],
        ["holds the model"],
    )


# --- calibrate: the manifest changes together with --json/--plot, or not at all -----------------


def test_calibrate_leaves_the_manifest_when_the_plot_cannot_be_written(bundle, tmp_path, capsys):
    plot = tmp_path / ("p" * 250 + ".png")  # fails only when written, after the measurement
    out_json = tmp_path / "cal.json"
    argv = [str(bundle), "--images", "generator", "--count", "4", "--json", str(out_json), "--plot", str(plot)]
    assert_refused(calibrate.main, argv, capsys, [bundle, out_json, tmp_path])


@pytest.mark.parametrize("name", [MANIFEST_FILE, "head.onnx", "./tail.onnx", "labels.json"])
def test_calibrate_refuses_to_write_over_the_bundle(bundle, capsys, name):
    argv = [str(bundle), "--images", "generator", "--count", "4", "--json", str(bundle / name)]
    assert_refused(calibrate.main, argv, capsys, [bundle], ["an input of this command"])


def test_calibrate_refuses_one_file_for_two_outputs(bundle, tmp_path, capsys):
    out = str(tmp_path / "same")
    argv = [str(bundle), "--images", "generator", "--count", "4", "--json", out, "--plot", out]
    assert_refused(calibrate.main, argv, capsys, [bundle], ["its own file"])


def test_calibrate_names_the_images_it_could_not_read(bundle, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2
    import numpy as np

    for i in range(3):
        cv2.imwrite(str(folder / f"good{i}.png"), np.full((20, 20, 3), 40 * i, np.uint8))
    for i in range(5):
        (folder / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    assert calibrate.main([str(bundle), "--images", str(folder), "--count", "3", "--dry-run", "--quiet"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "5 image file(s)" in warnings[0] and "broken0.jpg" in warnings[0], warnings


# --- sizes from the command line are bounded before anything is allocated -----------------------


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--crop", "100000"], "--crop"),
        (["--size", "100000"], "--size"),
        (["--samples", "100000"], "--samples"),
    ],
)
def test_split_refuses_absurd_sizes(tmp_path, capsys, extra, says):
    out = tmp_path / "bundle"
    assert_refused(split.main, [str(MODEL), "--at", CUT, "--out", str(out), *extra], capsys, [tmp_path], [says])


def test_export_refuses_an_input_over_the_size_bound(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    argv = ["efficientnet_lite0", "--input-shape", "100000,3,1000,1000", "--out", str(out)]
    assert_refused(export.main, argv, capsys, [tmp_path], ["elements"])


def test_split_names_the_labels_file_whose_count_is_wrong(tmp_path, capsys):
    labels = tmp_path / "two.json"
    labels.write_text('["a", "b"]')
    out = tmp_path / "bundle"
    line = assert_refused(
        split.main, [str(MODEL), "--at", CUT, "--labels", str(labels), "--out", str(out)], capsys, [tmp_path]
    )
    assert str(labels) in line and "12 classes" in line and str(out) not in line


def test_analyze_says_the_model_has_no_outputs(tmp_path, capsys, build_onnx):
    from onnx import helper
    from tiny_models import save

    model = build_onnx([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 3, 4, 4]}, {})
    path = save(model, tmp_path / "no_outputs.onnx")
    assert_refused(analyze.main, [str(path)], capsys, [tmp_path], ["no outputs"])


# --- export: the user's module or factory fails ----------------------------------------------


@pytest.mark.parametrize(
    "source, says",
    [
        ("raise RuntimeError('boom')\n", "importing userpkg_{n} failed: RuntimeError: boom (at "),
        ("def make(:\n", "importing userpkg_{n} failed: SyntaxError"),
        (
            "def make():\n    raise ValueError('bad factory')\n",
            "calling userpkg_{n}:make failed: ValueError: bad factory",
        ),
        ("import no_such_module_anywhere\n", "importing userpkg_{n} failed: ModuleNotFoundError"),
    ],
)
def test_export_reports_a_failing_user_module(tmp_path, capsys, monkeypatch, source, says):
    n = abs(hash(source)) % 10**6
    (tmp_path / f"userpkg_{n}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "m.onnx"
    argv = [f"userpkg_{n}:make", "--input-shape", "1,3,8,8", "--out", str(out)]
    assert_refused(export.main, argv, capsys, [out], [says.format(n=n)])


# --- arguments are checked before anything starts -------------------------------------------------


@pytest.mark.parametrize(
    "main, argv, says",
    [
        (demo.main, ["--rate=-1"], "--rate"),
        (demo.main, ["--frames", "0"], "--frames"),
        (bench.main, ["pipeline", "--codec", "brotli"], "--codec"),
        (bench.main, ["pipeline", "--bits", "9"], "--bits"),
        (bench.main, ["pipeline", "--duration", "nan"], "--duration"),
        (bench_codec.main, ["--shape", "1,0,3"], "--shape"),
        (train_shapes.main, ["--out", "x", "--min-accuracy", "2"], "--min-accuracy"),
        (train_shapes.main, ["--out", "x", "--epochs", "0"], "--epochs"),
        (calibrate.main, ["b", "--images", "generator", "--count", "0"], "--count"),
        (calibrate.main, ["b", "--images", "generator", "--video-codecs", "vp9"], "--video-codecs"),
        (plan.main, ["m.onnx", "--video-codecs", "h264,mjpeg"], "--video-codecs"),
        (classify.main, ["b", "--frames", "generator", "--top-k", "0"], "--top-k"),
        (analyze.main, ["m.onnx", "--max-tensors", "9"], "--max-tensors"),
        (export.main, ["x:y", "--out", "m.onnx", "--check-inputs", "0"], "--check-inputs"),
        (split.main, ["m.onnx"], "--at"),  # argparse's own "required" error is one line too
        (bench.main, ["nonsense"], "unknown benchmark"),
        (bench.main, [], "name a benchmark"),
        (plan.main, ["m.onnx", "--bogus"], "--bogus"),
        (bench_planner.main, [], "--plan"),
        (bench_planner.main, ["--plan", "p.json", "--loss", "-1"], "--loss"),
        (bench.main, ["pipeline", "--loss", "abc"], "--loss"),
        (bench.main, ["pipeline", "--keyframe-interval", "0,x"], "--keyframe-interval"),
        (bench.main, ["pipeline", "--reference", "newest"], "--reference"),
        (bench.main, ["pipeline", "--features-qos", "maybe"], "--features-qos"),
        (testbed.main, ["up", "5", "--loss", "100"], "--loss"),
        (testbed.main, ["sideways"], "invalid choice"),
        (studio_server.main, ["--port", "x"], "--port"),
    ],
)
def test_bad_arguments_are_one_line_before_anything_runs(tmp_path, capsys, monkeypatch, main, argv, says):
    monkeypatch.chdir(tmp_path)
    line = assert_refused(main, argv, capsys, [tmp_path], [says])
    assert "usage:" not in line
    assert list(tmp_path.iterdir()) == [], "something was written"


# --- files have the umask's mode -----------------------------------------------------------------


def test_outputs_get_the_usual_mode(bundle, tmp_path, capsys):
    umask = os.umask(0o022)
    try:
        plot, cal_json, cal_plot, codec_json = (tmp_path / n for n in ("cuts.png", "c.json", "c.png", "b.json"))
        assert analyze.main([str(MODEL), "--plot", str(plot)]) == 0
        argv = [str(bundle), "--images", "generator", "--count", "4", "--json", str(cal_json), "--plot", str(cal_plot)]
        assert calibrate.main([*argv, "--quiet"]) == 0
        assert (
            bench_codec.main(["--repeats", "1", "--seed-repeats", "1", "--shape", "1,2,3", "--json", str(codec_json)])
            == 0
        )
        for path in (plot, cal_json, cal_plot, codec_json, bundle / MANIFEST_FILE):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        assert json.loads(cal_json.read_text())["written"] is True
    finally:
        os.umask(umask)
    capsys.readouterr()


# --- a closed pipe ends a tool quietly ---------------------------------------------------------------


def test_a_closed_pipe_is_a_quiet_exit(tmp_path):
    # `true` has closed its end long before the tool has imported its modules and prints
    script = f"{sys.executable} -m splitcomp_tools.analyze {MODEL} --json | true; echo rc=${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert "rc=141" in result.stdout and result.stderr == "", result


# --- a read-only file system -----------------------------------------------------------------------

READ_ONLY_DRIVER = textwrap.dedent(
    """
    import json, sys
    from splitcomp_tools import analyze, calibrate, export, split
    from splitcomp_tools.demo import command as demo
    ro, model, cut, bundle = sys.argv[1:5]
    cases = {
        "split": (split.main, [model, "--at", cut, "--out", ro + "/bundle"]),
        "analyze": (analyze.main, [model, "--plot", ro + "/cuts.png"]),
        "export": (export.main, ["efficientnet_lite0", "--out", ro + "/m.onnx"]),
        "demo": (demo.main, ["--model", "shapes", "--out", ro + "/demo"]),
        "calibrate": (calibrate.main, [bundle, "--images", "generator", "--count", "4", "--plot", ro + "/cal.png"]),
    }
    results = {}
    for name, (main, argv) in cases.items():
        results[name] = main(argv)
        print("---", name, flush=True, file=sys.stderr)
    print(json.dumps(results))
    """
)


def test_a_read_only_file_system_is_one_line_per_tool(bundle, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare here to make a read-only mount")
    ro = tmp_path / "ro"
    ro.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(READ_ONLY_DRIVER)
    before = snapshot([bundle])
    script = f"mount -t tmpfs -o ro,size=1m tmpfs {ro} && exec {sys.executable} {driver} {ro} {MODEL} {CUT} {bundle}"
    result = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0 and "mount" in result.stderr and not result.stdout:
        pytest.skip(f"no private read-only mount here: {result.stderr.strip()[:200]}")
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == dict.fromkeys(("split", "analyze", "export", "demo", "calibrate"), 2), result.stderr
    sections = result.stderr.split("--- ")
    for section in sections[:-1]:
        lines = [line for line in section.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Read-only file system" in lines[0], section
    assert "Traceback" not in result.stderr
    assert snapshot([bundle]) == before, "calibrate rewrote the manifest although its --plot failed"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["NOT_A_BUNDLE", "--out", "REPO"], ("bundle directory not found",)),
        (["BUNDLE", "--out", "REPO", "--platform", "tensorrt"], ("--platform", "python")),
        (["BUNDLE", "--out", "REPO", "--max-batch", "0"], ("--max-batch",)),
        (["BUNDLE", "--out", "REPO", "--max-batch", "100000"], ("--max-batch",)),
        (["BUNDLE", "--out", "REPO", "--queue-delay-us", "-1"], ("--queue-delay-us",)),
        (["BUNDLE", "--out", "FILE"], ("is a file", "directory for the model repository")),
        (["BUNDLE", "--out", "MISSING/REPO"], ("does not exist",)),
        (["BUNDLE", "--out", "BUNDLE/models"], ("inside the bundle",)),
        (["BUNDLE", "--out", "REPO", "--max-batch", "4"], ("batch of 1 only", "--dynamic-batch", "--max-batch 1")),
    ],
)
def test_triton_repo_refuses_bad_input_and_writes_nothing(bundle, tmp_path, capsys, argv, says):
    from splitcomp_tools import triton_repo

    repo, file = tmp_path / "repo", tmp_path / "file.txt"
    repo.mkdir()
    (repo / "other").mkdir()
    (repo / "other" / "config.pbtxt").write_text('name: "other"\n')
    file.write_text("not a repository")
    paths = {"BUNDLE": str(bundle), "REPO": str(repo), "FILE": str(file), "MISSING": str(tmp_path / "missing")}
    argv = [paths.get(a.split("/")[0], a.split("/")[0]) + a[len(a.split("/")[0]) :] for a in argv]
    assert_refused(triton_repo.main, argv, capsys, unchanged=[repo, repo / "other", file, bundle], says=says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "file.txt", "repo"]  # no staging left behind

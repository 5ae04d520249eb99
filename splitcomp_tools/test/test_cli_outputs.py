"""The command layer's shared output check (files=True) and progress bars, as every command gets them."""

import pytest

from splitcomp_tools.cli import UsageError, check_outputs, progress_bars


def test_file_outputs_must_be_file_names_in_existing_folders(tmp_path):
    with pytest.raises(UsageError, match="is a directory; give a file name"):
        check_outputs([("--json", str(tmp_path))], [], files=True)
    missing = tmp_path / "nowhere" / "out.json"
    with pytest.raises(UsageError, match=f"--plot {missing}: directory {missing.parent} does not exist"):
        check_outputs([("--json", None), ("--plot", str(missing))], [], files=True)
    check_outputs([("--json", str(tmp_path / "out.json")), ("--plot", None)], [], files=True)
    check_outputs([("--out", str(tmp_path))], [])  # without files=True a folder is a fine output (split --out)


def test_the_file_checks_come_before_the_input_checks(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(UsageError, match="an input of this command"):
        check_outputs([("--json", str(model))], [model], files=True)
    with pytest.raises(UsageError, match="is a directory"):
        check_outputs([("--json", str(model)), ("--plot", str(tmp_path))], [model], files=True)


def test_progress_is_silent_when_off_and_one_bar_per_pass_when_on(capsys):
    with progress_bars(False) as report:
        assert report is None
    with progress_bars(True, {"frames": ["photos:train", "photos:test"]}) as report:
        assert report is not None
        for _source in range(2):  # two passes over frames: done starts over
            for done in range(1, 4):
                report("frames", done, 3)
        for done in range(3):  # before each encoding, then when all are done
            report("encodings", done, 2)
    out, err = capsys.readouterr()
    finished = [line.split(": ")[0] for line in err.replace("\r", "\n").splitlines() if "100%" in line]
    assert finished == ["photos:train", "photos:test", "encodings"], err
    assert out == ""


def test_no_bar_is_drawn_for_a_phase_that_never_reports(capsys):
    with progress_bars(True, {"frames": ["generator"]}):
        pass
    assert capsys.readouterr().err == ""

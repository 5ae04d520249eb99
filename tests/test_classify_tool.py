"""classify runs image files through a bundle's split pipeline and reports the unsplit model's class."""

import json
import re

import cv2
import numpy as np

from splitcomp_core.bundle import load_bundle
from splitcomp_core.postprocess import softmax
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.runtime import InferenceSession
from splitcomp_tools import classify
from splitcomp_tools.demo.models import DEMO_MODEL
from splitcomp_tools.frames.generator import GeneratorSource


def test_classify_agrees_with_the_unsplit_model(demo_bundle, tmp_path, capsys):
    source = GeneratorSource(640, 480, seed=21)
    paths = []
    for i in range(4):
        path = tmp_path / f"frame{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(source.read(), cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    assert classify.main([str(demo_bundle), *paths, "--json", "--codec", "zstd"]) == 0
    rows = json.loads(capsys.readouterr().out)
    manifest = load_bundle(demo_bundle).manifest
    full = InferenceSession(DEMO_MODEL, ["cpu"])
    preprocess = Preprocessor(manifest.input)
    for row, path in zip(rows, paths):
        image = cv2.imread(path)
        expected = int(np.argmax(softmax(full.run({"image": preprocess(image, "bgr8")})["logits"][0])))
        assert row["results"][0]["class_id"] == expected
        assert 0 < row["feature_bytes"] < 4096  # zstd on top of 4-bit codes


def test_classify_refuses_what_is_not_an_image(demo_bundle, tmp_path, capsys):
    bogus = tmp_path / "notes.png"
    bogus.write_text("hello")
    assert classify.main([str(demo_bundle), str(bogus)]) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert classify.main([str(demo_bundle), str(tmp_path / "missing.png")]) == 2
    assert "no such image file" in capsys.readouterr().err


def test_classify_takes_frames_from_a_source(demo_bundle, capsys):
    assert classify.main([str(demo_bundle), "--frames", "generator", "--count", "3", "--seed", "5", "--json"]) == 0
    judged = json.loads(capsys.readouterr().out)
    rows = judged["rows"]
    assert [row["image"] for row in rows] == ["generator#0", "generator#1", "generator#2"]
    assert judged["agreement"]["split"]["frames"] == judged["agreement"]["jpeg_full"]["frames"] == 3
    manifest = load_bundle(demo_bundle).manifest
    full = InferenceSession(DEMO_MODEL, ["cpu"])
    preprocess = Preprocessor(manifest.input)
    source = GeneratorSource(640, 480, seed=5)
    for row in rows:
        expected = int(np.argmax(full.run({"image": preprocess(source.read())})["logits"][0]))
        assert row["results"][0]["class_id"] == expected
        assert row["unsplit"]["class_id"] == expected  # the unsplit answer the agreement is counted against


def test_classify_needs_images_or_frames_but_not_both(demo_bundle, tmp_path, capsys):
    assert classify.main([str(demo_bundle)]) == 2
    assert "--frames SOURCE" in capsys.readouterr().err
    assert classify.main([str(demo_bundle), str(tmp_path / "a.png"), "--frames", "generator"]) == 2
    assert "not both" in capsys.readouterr().err
    assert classify.main([str(demo_bundle), "--frames", "generator", "--count", "0"]) == 2
    assert "--count: must be from 1" in capsys.readouterr().err


def test_the_text_form_is_one_line_per_frame_with_the_json_figures(demo_bundle, capsys):
    argv = [str(demo_bundle), "--frames", "generator", "--count", "2", "--top-k", "2"]
    assert classify.main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert classify.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "" and "not independent" in lines[3]  # then the agreement beside JPEG-95's
    lines = lines[:2]
    for row, line in zip(rows, lines):
        best = ", ".join(f"{r['label']} {r['score']:.1%}" for r in row["results"])
        assert line.startswith(f"{row['image']}: {best}  ({row['feature_bytes']} B, head "), line
        assert re.fullmatch(r".* B, head \d+\.\d ms, tail \d+\.\d ms\)", line), line

"""Softmax, top-k and label files."""

import json
import math

import numpy as np
import pytest

from splitcomp_core.errors import BundleError
from splitcomp_core.postprocess import label_for, load_labels, softmax, top_k, top_k_labelled


def test_softmax_matches_the_definition_and_sums_to_one():
    logits = np.array([1.0, -0.5, 2.0, 0.0], dtype=np.float32)
    expected = [math.exp(v) / sum(math.exp(w) for w in logits.tolist()) for v in logits.tolist()]
    probs = softmax(logits)
    np.testing.assert_allclose(probs, expected, rtol=1e-12)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_softmax_is_stable_for_huge_logits():
    probs = softmax(np.array([1000.0, 1001.0, -1000.0]))
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs[:2], [1 / (1 + math.e), math.e / (1 + math.e)], rtol=1e-12)
    assert probs[2] == 0.0


def test_top_k_is_best_first_with_softmax_scores():
    logits = np.array([[0.1, 3.0, -2.0, 1.5, 3.0]], dtype=np.float32)
    result = top_k(logits, 3)
    assert [i for i, _ in result] == [1, 4, 3]  # tie between 1 and 4 goes to the lower id
    scores = [s for _, s in result]
    assert scores[0] == pytest.approx(scores[1]) and scores[1] > scores[2]
    assert scores[2] == pytest.approx(math.exp(1.5) / np.exp(logits.astype(np.float64)).sum(), rel=1e-6)
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in result)


def test_top_k_with_k_beyond_classes_returns_every_class():
    result = top_k(np.array([0.2, 0.1, 0.3]), 10)
    assert [i for i, _ in result] == [2, 0, 1]
    assert sum(s for _, s in result) == pytest.approx(1.0)


def test_probabilities_are_not_softmaxed_again():
    probs = np.array([0.1, 0.7, 0.2], dtype=np.float32)
    result = top_k(probs, 2, kind="probabilities")
    assert [i for i, _ in result] == [1, 2]
    assert [s for _, s in result] == pytest.approx([0.7, 0.2], rel=1e-6)
    assert top_k(probs, 1)[0][1] < 0.5  # as logits, the same row is much flatter


@pytest.mark.parametrize(
    "scores, k, kind, problem",
    [
        (np.zeros((2, 3)), 1, "logits", "one row of class scores"),
        (np.float32(1.0), 1, "logits", "one row"),
        (np.zeros(0), 1, "logits", "one row"),
        (np.zeros(3), 0, "logits", "k must be >= 1"),
        (np.zeros(3), 1, "log-probs", "kind must be one of"),
    ],
)
def test_top_k_rejects_bad_arguments(scores, k, kind, problem):
    with pytest.raises(ValueError, match=problem):
        top_k(scores, k, kind)


def test_labels_from_plain_list_and_imagenet_class_index(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(["tench", "goldfish", "great white shark"]))
    assert load_labels(plain) == ["tench", "goldfish", "great white shark"]
    index = tmp_path / "imagenet_class_index.json"
    entries = {str(i): [f"n0{i:07d}", name] for i, name in enumerate(["tench", "goldfish", "shark"] * 4)}
    index.write_text(json.dumps(dict(reversed(list(entries.items())))))  # key order must not matter
    labels = load_labels(index)
    assert labels == ["tench", "goldfish", "shark"] * 4
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"1": "b", "0": "a"}))
    assert load_labels(mapping) == ["a", "b"]


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[1, 2]", "must be a JSON list of strings"),
        ('{"0": ["n1", "a"], "2": ["n2", "b"]}', 'keys "0" to "1"'),
        ('{"0": ["n1", 5]}', "neither a string nor a list ending in a string"),
        ('["a", ', "invalid JSON at line 1"),
    ],
)
def test_bad_label_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(BundleError) as info:
        load_labels(path)
    assert str(info.value).startswith(str(path)) and problem in str(info.value)


def test_missing_label_file_names_the_file(tmp_path):
    with pytest.raises(BundleError, match="cannot read the labels file") as info:
        load_labels(tmp_path / "absent.json")
    assert str(tmp_path / "absent.json") in str(info.value)


def test_label_lookup_falls_back_to_the_class_id():
    assert label_for(["a", "b"], 1) == "b"
    assert label_for(["a", "b"], 2) == "2"
    assert label_for(None, 0) == "0"
    assert label_for(["a", "b"], -1) == "-1"
    result = top_k_labelled(np.array([0.0, 5.0, 1.0]), 2, ["zero", "one"])
    assert [(i, name) for i, name, _ in result] == [(1, "one"), (2, "2")]
    assert result[0][2] == pytest.approx(math.exp(5) / (1 + math.exp(5) + math.e))

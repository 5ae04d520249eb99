"""plan --dynamic-batch: every candidate bundle of a batch-1 export, the two extremes too, takes any batch."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from conformance_models import export_family

from splitcomp_core.bundle import DYNAMIC, load_bundle
from splitcomp_tools.model.analyze import analyze_model
from splitcomp_tools.model.candidates import EDGE_ONLY, ROBOT_ONLY, ModelOptions, prepare_candidates


def test_plan_candidates_of_a_static_export_take_any_batch(tmp_path):
    model = export_family("efficientnet", "dynamo", False, tmp_path / "export").path  # a flatten to [1, -1]
    candidates = prepare_candidates(
        model, analyze_model(model), tmp_path / "work", ModelOptions(labels=None, dynamic_batch=True)
    )
    assert {EDGE_ONLY, ROBOT_ONLY} <= {c.cut_id for c in candidates} and len(candidates) > 2
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    full = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    alone = np.concatenate([full.run(None, {"input": x[k : k + 1]})[0] for k in range(3)])
    for c in candidates:
        assert c.bundle is not None
        bundle = load_bundle(c.bundle)  # refuses parts whose declared shapes differ from the manifest's
        m = bundle.manifest
        assert m.input.shape[0] == m.output.shape[0] == DYNAMIC and all(t.shape[0] == DYNAMIC for t in m.cut)
        head = ort.InferenceSession(str(bundle.head_path), providers=["CPUExecutionProvider"])
        tail = ort.InferenceSession(str(bundle.tail_path), providers=["CPUExecutionProvider"])
        features = dict(zip([o.name for o in head.get_outputs()], head.run(None, {m.input.name: x})))
        np.testing.assert_allclose(tail.run([m.output.name], features)[0], alone, atol=1e-4)

"""The model.py of the python platform: the tail in ONNX Runtime on each batch Triton's batcher merged.

It is the same file for every bundle (the tensor names come from the model's config), so it lives here as
text and is written into the version folder beside tail.onnx. Three quirks of the pytriton wheel's server
are handled by the file itself or by how the server is started (docs/triton.md): the paths in
SPLITCOMP_TRITON_SITE_PACKAGES go first on sys.path, since the backend's stub interpreter does not see the
venv's packages.
"""

MODEL_FILE = "model.py"
TAIL_FILE = "tail.onnx"  # beside model.py in the version folder

MODEL_PY = '''"""Triton python backend: a splitcomp tail (tail.onnx beside this file) in ONNX Runtime, on the merged batch.

Written by splitcomp's `triton_repo`. The frames of all requests Triton's dynamic batcher merged run as
one ONNX Runtime call; each request gets its own rows back. SPLITCOMP_TRITON_SITE_PACKAGES (paths joined
by os.pathsep) goes first on sys.path: the backend's stub interpreter does not see a venv's packages.
"""

import json
import os
import sys

sys.path[:0] = [p for p in os.environ.get("SPLITCOMP_TRITON_SITE_PACKAGES", "").split(os.pathsep) if p]

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]
        path = os.path.join(args["model_repository"], args["model_version"], "tail.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        feeds = {n: [pb.get_input_tensor_by_name(r, n).as_numpy() for r in requests] for n in self.inputs}
        rows = [len(a) for a in feeds[self.inputs[0]]]
        try:
            scores = self.session.run(self.outputs, {n: np.concatenate(a) for n, a in feeds.items()})
        except Exception as exc:  # every request of the batch gets the reason
            return [pb.InferenceResponse(error=pb.TritonError(str(exc))) for _ in requests]
        answers, start = [], 0
        for count in rows:
            tensors = [
                pb.Tensor(n, np.ascontiguousarray(s[start : start + count])) for n, s in zip(self.outputs, scores)
            ]
            answers.append(pb.InferenceResponse(output_tensors=tensors))
            start += count
        return answers
'''

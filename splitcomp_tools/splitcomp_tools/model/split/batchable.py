"""`split --dynamic-batch`: the model the split cuts when head and tail must take any batch.

A static-batch model is rewritten (`graph.dynamic_batch.make_batch_dynamic`) into a temporary
copy, which must answer a batch as the original answers each frame before it is cut; the split
then runs on the copy exactly as on a model exported with a dynamic batch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import onnx

from splitcomp_tools.model.graph.dynamic_batch import check_batch_rewrite, make_batch_dynamic
from splitcomp_tools.model.split.spec import SplitError
from splitcomp_tools.model.split.verify import TOLERANCE


@contextlib.contextmanager
def batchable_model(model_path: str | os.PathLike, dynamic_batch: bool) -> Iterator[str | os.PathLike]:
    """The path to split: `model_path`, or with `dynamic_batch` a rewritten copy of a static-batch model."""
    if not dynamic_batch:
        yield model_path
        return
    try:
        full = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises DecodeError, OSError or its own errors for a file it cannot read
        raise SplitError(f"{model_path}: cannot read the model to give it a dynamic batch: {exc}") from exc
    if not make_batch_dynamic(full):
        yield model_path
        return
    with tempfile.TemporaryDirectory(prefix="splitcomp-dynamic-batch-") as folder:
        path = Path(folder) / "model.onnx"
        large = full.ByteSize() >= onnx.checker.MAXIMUM_PROTOBUF // 2
        onnx.save(full, str(path), save_as_external_data=large, location="model.onnx.data")
        del full
        yield path


def check_batchable(
    original: str | os.PathLike, rewritten: str | os.PathLike, input_name: str, shape: Sequence[int]
) -> None:
    """Refuse a rewritten model that does not answer a batch as the original answers each frame."""
    if Path(rewritten) == Path(original):
        return
    problem = check_batch_rewrite(str(original), str(rewritten), input_name, shape, TOLERANCE)
    if problem is not None:
        raise SplitError(
            f"--dynamic-batch: {original} fixes its batch at 1 in a way the rewrite does not cover ({problem}); "
            f"export the model with a dynamic batch (`export ... --dynamic-batch`) and split that"
        )

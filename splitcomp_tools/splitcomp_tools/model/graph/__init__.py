"""Where an ONNX model can be cut, and how to cut it: the library `analyze`, `split` and `export` share.

One idea per module: `structure` (load and index a graph, extract a part), `cuts` (find and prove
cuts), `tensor_types` (dtype and shape of tensors at fixed input sizes) and `batch_reads` (reads of
the input's shape that bypass the cuts). `from splitcomp_tools.model import graph as gr` gives them all.
"""

from splitcomp_tools.model.graph.batch_reads import InputShapeRead, input_shape_reads, rebase_batch_reads
from splitcomp_tools.model.graph.cuts import MAX_CUT_TENSORS, cut_problem, find_cuts, nearest_cuts
from splitcomp_tools.model.graph.structure import (
    Cut,
    Graph,
    ModelError,
    build_graph,
    extract,
    head_nodes,
    load_model,
)
from splitcomp_tools.model.graph.tensor_types import (
    MAX_INPUT_ELEMENTS,
    TensorType,
    check_input_size,
    fixed_input_shapes,
    infer_tensor_types,
    measure_types,
)

__all__ = [
    "MAX_CUT_TENSORS",
    "MAX_INPUT_ELEMENTS",
    "Cut",
    "Graph",
    "InputShapeRead",
    "ModelError",
    "TensorType",
    "build_graph",
    "check_input_size",
    "cut_problem",
    "extract",
    "find_cuts",
    "fixed_input_shapes",
    "head_nodes",
    "infer_tensor_types",
    "input_shape_reads",
    "load_model",
    "measure_types",
    "nearest_cuts",
    "rebase_batch_reads",
]

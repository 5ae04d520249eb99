"""A Triton model repository from a bundle: the library behind `triton_repo`.

One job per module: `config` (a tail's tensors and the config.pbtxt Triton reads), `python_model` (the
model.py that runs the tail in ONNX Runtime inside Triton's python backend) and `repository`
(`write_triton_repo`: one model per cut, written beside the repository and moved in whole). The models are
named by `splitcomp_core.triton_session.triton_model_name`, which tail_node asks for by default.
"""

from splitcomp_tools.model.triton.config import (
    DEFAULT_QUEUE_DELAY_US,
    MAX_BATCH_LIMIT,
    MAX_QUEUE_DELAY_US,
    PLATFORMS,
    TritonRepoError,
)
from splitcomp_tools.model.triton.repository import TritonModel, write_triton_repo

__all__ = [
    "DEFAULT_QUEUE_DELAY_US",
    "MAX_BATCH_LIMIT",
    "MAX_QUEUE_DELAY_US",
    "PLATFORMS",
    "TritonModel",
    "TritonRepoError",
    "write_triton_repo",
]

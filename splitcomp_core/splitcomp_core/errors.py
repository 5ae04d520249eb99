"""Exception types shared by the core, the nodes and the tools.

One base class lets nodes and command lines catch every *expected* failure (bad input, bad bundle,
missing provider) in one place and report it cleanly, while real bugs still surface as tracebacks.
"""


class SplitcompError(Exception):
    """Base of every error that is the caller's input, not a bug."""


class CodecError(SplitcompError, ValueError):
    """An encoded tensor is malformed; the message names the offending field."""


class EntropyModelError(CodecError):
    """An entropy-coded tensor names a probability model the receiver does not hold (or may not have)."""


class BundleError(SplitcompError):
    """A split bundle is missing, incomplete or inconsistent; the message names the file."""


class RuntimeSetupError(SplitcompError):
    """ONNX Runtime cannot run the model as configured (provider, model file)."""


class InferenceError(SplitcompError):
    """ONNX Runtime refused to run the model on these inputs."""


class ImageFormatError(SplitcompError, ValueError):
    """An image's encoding, size or step is not one we can convert."""


class BackendUnavailable(SplitcompError):
    """A remote inference server could not answer; `reason` names why, for counters and diagnostics.

    Reasons of the Triton session: triton_down (no connection), triton_timeout (no answer in time),
    triton_not_ready (the model is missing or still loading), triton_refused (a shape or dtype refused).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

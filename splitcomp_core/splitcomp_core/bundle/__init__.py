"""Split bundles: the one directory both nodes load (manifest.json + head.onnx + tail.onnx [+ labels.json]).

A bundle is refused at start-up, with one message naming the problem and the file, rather than
failing later on the robot or the edge server. The manifest is checked against a JSON schema chosen
by its `format_version`; the model files are tied to the manifest by `model_id`, a digest of head
and tail, so the two machines can prove they run halves of the same split. Writes are atomic: a
bundle directory is either complete and verified, or absent.

One idea per module: schema.py (names, limits and the JSON schema of each format_version), manifest.py
(the dataclasses and their cross-field rules), validate.py (checks on the manifest as JSON),
model_files.py (model_id and the ONNX files' fit), read.py (load_bundle), multi_cut.py (format_version 2),
write.py (atomic, verified writes) and batch.py (whether a tail batches, and the command that makes one
that does). Import from here: `from splitcomp_core.bundle import load_bundle`.
"""

from splitcomp_core.bundle.batch import dynamic_batch_command, takes_any_batch
from splitcomp_core.bundle.manifest import (
    Bundle,
    CutChoice,
    InputSpec,
    Manifest,
    OutputSpec,
    QuantizationSpec,
    TensorSpec,
)
from splitcomp_core.bundle.model_files import compute_model_id, model_id_of_files
from splitcomp_core.bundle.multi_cut import multi_cut_model_id
from splitcomp_core.bundle.read import load_bundle, read_manifest
from splitcomp_core.bundle.schema import (
    CUT_ID_PATTERN,
    CUTS_DIR,
    DYNAMIC,
    FORMAT_VERSION,
    HEAD_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    MANIFEST_SCHEMA,
    MAX_IMAGE_SIDE,
    MODES,
    MULTI_CUT_FORMAT_VERSION,
    MULTI_CUT_SCHEMA,
    NEWEST_FORMAT_VERSION,
    SCHEMAS,
    TAIL_FILE,
)
from splitcomp_core.bundle.write import (
    manifest_with_quantization,
    update_quantization,
    write_bundle,
    write_multi_cut_bundle,
)

__all__ = [
    "CUTS_DIR",
    "CUT_ID_PATTERN",
    "DYNAMIC",
    "FORMAT_VERSION",
    "HEAD_FILE",
    "LABELS_FILE",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "MAX_IMAGE_SIDE",
    "MODES",
    "MULTI_CUT_FORMAT_VERSION",
    "MULTI_CUT_SCHEMA",
    "NEWEST_FORMAT_VERSION",
    "SCHEMAS",
    "TAIL_FILE",
    "Bundle",
    "CutChoice",
    "InputSpec",
    "Manifest",
    "OutputSpec",
    "QuantizationSpec",
    "TensorSpec",
    "compute_model_id",
    "dynamic_batch_command",
    "load_bundle",
    "manifest_with_quantization",
    "model_id_of_files",
    "multi_cut_model_id",
    "read_manifest",
    "takes_any_batch",
    "update_quantization",
    "write_bundle",
    "write_multi_cut_bundle",
]

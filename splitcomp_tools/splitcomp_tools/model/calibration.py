"""What one calibration found, which of its encodings becomes the head's default, and storing it.

`Calibration` holds the ranges and the comparison table of one run; `cheapest` and `best` choose an
encoding from the table and `with_default` makes it the bundle's default, which `save_calibration`
writes into the manifest together with any rendered side files (a table, a plot), all or none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitcomp_core.bundle import QuantizationSpec, manifest_with_quantization
from splitcomp_core.files import atomic_write_all
from splitcomp_tools.model.encodings import QUANTIZED_METHODS, CalibrationError, Result, head_mode
from splitcomp_tools.model.ranges import TensorCalibration, manifest_entry


@dataclass
class Calibration:
    """Everything one run found; `quantization` is the manifest section `calibrate` writes.

    `frames` were measured for the ranges; the table's agreement and bytes come from `eval_frames` frames
    of `eval_images` (the same frames when no separate evaluation source was given).
    """

    bundle: Path
    images: str
    frames: int
    bits: int
    method: str
    percentile: float
    tensors: dict[str, TensorCalibration]
    results: list[Result]
    quantization: QuantizationSpec
    clip: tuple[float, float]
    eval_images: str | None = None
    eval_frames: int = 0
    default: Result | None = None  # the table row made the head's default by with_default()
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. image files that did not decode

    def to_json(self, written: bool) -> dict[str, Any]:
        return {
            "bundle": str(self.bundle),
            "images": self.images,
            "frames": self.frames,
            "eval_images": self.eval_images,
            "eval_frames": self.eval_frames,
            "bits": self.bits,
            "method": self.method,
            "percentile": self.percentile,
            "clip": list(self.clip),
            "written": written,
            "calibrated": self.quantization.calibrated,
            "mode": self.quantization.mode,
            "codec": self.quantization.codec,
            "default": None if self.default is None else dataclasses.asdict(self.default),
            "results": [dataclasses.asdict(r) for r in self.results],
        }

    def cheapest(self, target: float) -> Result | None:
        """The way to send features with the fewest bytes whose agreement reaches `target`, or None.

        Among equal bytes the higher agreement wins, then fewer bits; JPEG rows are not candidates.
        """
        fitting = [r for r in self.results if r.codec is not None and r.agreement >= target]
        if not fitting:
            return None
        return min(fitting, key=lambda r: (r.bytes_per_frame, -r.agreement, r.bits or 0))

    def best(self) -> Result:
        """The feature encoding that agrees most often (fewest bytes among those): what to use if none reaches a target."""
        return min((r for r in self.results if r.codec is not None), key=lambda r: (-r.agreement, r.bytes_per_frame))

    def with_default(self, choice: Result) -> Calibration:
        """This calibration with `choice` (one of `results`) as the head's default encoding in `quantization`.

        The stored ranges become `choice`'s range method at `choice`'s bits; a clip or raw choice keeps
        this run's stored ranges and sets only the head's mode, bits and codec.
        """
        if choice.codec is None or choice.bits is None:
            raise CalibrationError("a JPEG row is not a feature encoding the head can send")
        method, bits, calibrated = self.method, self.bits, self.quantization.calibrated
        mode = head_mode(choice.method) if choice.method in QUANTIZED_METHODS else self.quantization.mode
        if choice.method in QUANTIZED_METHODS[1:]:
            method, bits = choice.method.rsplit("_", 1)[1], choice.bits
            calibrated = {
                name: manifest_entry(t, method, bits, self.percentile, self.frames) for name, t in self.tensors.items()
            }
        quantization = dataclasses.replace(
            self.quantization, calibrated=calibrated, mode=mode, bits=choice.bits, codec=choice.codec
        )
        return dataclasses.replace(self, method=method, bits=bits, quantization=quantization, default=choice)


def save_calibration(
    calibration: Calibration, side_files: Mapping[Path, bytes | str] | None = None, dry_run: bool = False
) -> None:
    """The manifest's new quantization (unless `dry_run`) and the already rendered `side_files`: all of them
    change, or none does.

    Everything is written to temp files first; the side files replace theirs before the manifest does,
    so a read-only or full side-file target leaves the bundle as it was.
    """
    writes = {path: _writer(content) for path, content in (side_files or {}).items()}
    if not dry_run:
        manifest, manifest_text = manifest_with_quantization(calibration.bundle, calibration.quantization)
        writes[manifest] = _writer(manifest_text)
    atomic_write_all(writes)


def _writer(content: bytes | str) -> Callable[[Path], object]:
    if isinstance(content, bytes):
        return lambda tmp: tmp.write_bytes(content)
    return lambda tmp: tmp.write_text(content)

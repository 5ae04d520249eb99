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
from splitcomp_core.codec import CODEC_NAMES
from splitcomp_core.entropy import ENTROPY_FILE, EntropyTable, entropy_document
from splitcomp_core.files import atomic_write_all
from splitcomp_tools.model.agreement import DEFAULT_CONFIDENCE, DEPENDENCE_NOTE, Floor, meets, unsupported
from splitcomp_tools.model.baseline import FULL_FRAME
from splitcomp_tools.model.encodings import QUANTIZED_METHODS, CalibrationError, Result, head_mode
from splitcomp_tools.model.ranges import TensorCalibration, manifest_entry
from splitcomp_tools.model.video import H264_CAMERA


class InsufficientFrames(CalibrationError):
    """Too few confident judged frames for any encoding's lower bound to reach the target (frames_needed)."""


GRANULARITY_OF_MODE = {"calibrated": "per_tensor", "per_channel": "per_channel"}


def lower_bound(r: Result) -> float:
    """The 95 % Wilson lower bound of a row's top-1 agreement on confident frames (0 when unmeasured)."""
    return r.stats.confident_interval()[0] if r.stats is not None else 0.0


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
    confidence: float = DEFAULT_CONFIDENCE  # a judged frame is confident at this unsplit top-1 probability
    entropy_tables: dict[tuple[str, int], dict[str, EntropyTable]] = dataclasses.field(default_factory=dict, repr=False)
    # (path, row) of each learned bottleneck (a bundle distill made of this one) on the same judged frames
    bottlenecks: list[tuple[str, Result]] = dataclasses.field(default_factory=list)

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
            "default": None if self.default is None else self.default.to_json(),
            "confidence": self.confidence,
            "confident_frames": self.confident_frames(),
            "dependence_note": DEPENDENCE_NOTE,
            "results": [r.to_json() for r in self.results],
            "bottlenecks": [{"bundle": path, **r.to_json()} for path, r in self.bottlenecks],
        }

    def confident_frames(self) -> int:
        """How many judged frames the unsplit model is sure of (the same frames for every row)."""
        return next((r.stats.confident_frames for r in self.results if r.stats is not None), 0)

    def jpeg_reference(self) -> Result:
        """The JPEG-95 of the full camera frame: the row an encoding's all-frame agreement must not fall below."""
        return next(r for r in self.results if r.method == FULL_FRAME)

    def floor(self) -> Floor:
        """What a row's (a) must reach (agreement.Floor): JPEG-95 of the full frame's, and the H.264 camera-frame rows'."""
        jpeg = self.jpeg_reference().stats
        assert jpeg is not None  # calibrate measures every row
        return Floor(
            jpeg, tuple((r.bytes_per_frame, r.stats) for r in self.results if r.method == H264_CAMERA and r.stats)
        )

    def baselines(self) -> list[Result]:
        """The rows of the frames sent as they are (JPEG, H.264, H.265): the same for every cut of one model."""
        return [r for r in self.results if r.codec is None]

    def meeting(self, target: float) -> list[Result]:
        """The feature encodings that meet the rule at `target` (agreement.meets), JPEG rows never.

        Only codecs a bundle can hold as the head's default (CODEC_NAMES) are candidates: the entropy rows
        show what `codec entropy` would send with the entropy.json that calibrate writes beside the choice.

        The rule: the 95 % Wilson lower bound of top-1 agreement on confident frames reaches `target`, and
        top-1 agreement on all frames is no worse than the highest of JPEG-95 of the full frame's and that of every
        H.264 camera-frame row sending at least the row's bytes per frame (`floor`). InsufficientFrames when
        too few judged frames are confident for any lower bound to reach `target`: no choice on a point estimate.
        """
        why = unsupported(self.confident_frames(), target)
        if why is not None:
            raise InsufficientFrames(why)
        floor = self.floor()
        return [
            r
            for r in self.results
            if r.codec in CODEC_NAMES and r.stats and meets(r.stats, r.bytes_per_frame, floor, target)
        ]

    def cheapest(self, target: float) -> Result | None:
        """The encoding with the fewest bytes that meets the rule at `target` (see `meeting`), or None.

        Among equal bytes the higher lower bound wins, then fewer bits.
        """
        fitting = self.meeting(target)
        if not fitting:
            return None
        return min(fitting, key=lambda r: (r.bytes_per_frame, -lower_bound(r), r.bits or 0))

    def best(self) -> Result:
        """The feature encoding with the highest lower bound on confident agreement, then all-frame agreement,
        then fewest bytes: what to use if none meets a target."""
        return min(
            (r for r in self.results if r.codec in CODEC_NAMES),
            key=lambda r: (-lower_bound(r), -r.agreement, r.bytes_per_frame),
        )

    def entropy_row(self) -> Result | None:
        """The entropy codec's row of the stored encoding: what `codec entropy` sends with the written tables."""
        method, bits = self._stored_key()
        return next((r for r in self.results if (r.method, r.bits, r.codec) == (method, bits, "entropy")), None)

    def _stored_key(self) -> tuple[str, int]:
        q = self.quantization
        if self.default is not None:
            return self.default.method, self.default.bits or 0
        return ("clip" if q.mode == "clip" else f"{GRANULARITY_OF_MODE.get(q.mode, '')}_{self.method}", q.bits)

    def stored_tables(self) -> list[EntropyTable]:
        """The entropy tables of the encoding the head sends by default (none for raw floats or without them)."""
        return list(self.entropy_tables.get(self._stored_key(), {}).values())

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
        tables = calibration.stored_tables()
        if tables:  # the head's default encoding can be sent with codec entropy at once
            writes[calibration.bundle / ENTROPY_FILE] = _writer(entropy_document(tables))
    atomic_write_all(writes)


def _writer(content: bytes | str) -> Callable[[Path], object]:
    if isinstance(content, bytes):
        return lambda tmp: tmp.write_bytes(content)
    return lambda tmp: tmp.write_text(content)

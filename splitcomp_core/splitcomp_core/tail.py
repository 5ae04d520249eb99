"""The edge side, without ROS: encoded cut tensors -> checks -> tail model -> top-k classes.

Every received message is checked against the bundle before anything is decoded, so a stale
robot, a different model or a corrupt packet is refused with a reason instead of crashing
ONNX Runtime or allocating what the sender asks for.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from splitcomp_core.bundle import DYNAMIC, Bundle
from splitcomp_core.codec import DEFAULT_MAX_ELEMENTS, EncodedTensor, payload_bytes
from splitcomp_core.detection import Decoder, Detection, DetectionRejected
from splitcomp_core.entropy import EntropyModels, load_entropy_models
from splitcomp_core.errors import CodecError, EntropyModelError, InferenceError, SplitcompError
from splitcomp_core.interframe import Reference, decode_tensor, entropy_table
from splitcomp_core.postprocess import softmax, top_k_labelled
from splitcomp_core.runtime import DEFAULT_PROVIDERS, InferenceSession

SCORE_BATCH = 32  # frames per tail run in top1() when the bundle's batch dimension is dynamic


class Session(Protocol):
    """What runs the tail's network: ONNX Runtime here, or a serving engine (Triton) elsewhere."""

    provider: str

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class FeaturesRejected(SplitcompError):
    """A message the tail will not use; `reason` is a short key for diagnostics counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass
class TailResult:
    results: list[tuple[int, str, float]]
    feature_bytes: int
    decode_ms: float
    tail_ms: float
    post_ms: float
    codes: dict[str, np.ndarray] | None = None  # the frame's codes (None for raw floats): a later P-frame's reference
    detections: list[Detection] | None = None  # a detection bundle's boxes in camera pixels (then `results` is [])
    dropped_boxes: int = 0  # boxes with no area once clipped to the frame, left out of `detections`

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.tail_ms + self.post_ms


@dataclasses.dataclass
class Decoded:
    """One message's tensors as the tail model takes them, and their codes (None when any tensor is raw floats)."""

    feeds: dict[str, np.ndarray]
    codes: dict[str, np.ndarray] | None
    decode_ms: float
    feature_bytes: int
    image_size: tuple[int, int] = (0, 0)  # the camera frame's (width, height), which a detection's boxes map to


class TailPipeline:
    """Owns the tail's ONNX Runtime session (created once), the bundle's expectations and its entropy models."""

    def __init__(
        self,
        bundle: Bundle,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        allow_cpu_fallback: bool = True,
        top_k: int = 5,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
        intra_op_threads: int | None = None,
        entropy_models: EntropyModels | None = None,
        session: Session | None = None,
        batch_any: bool = False,
    ) -> None:
        """`entropy_models` replaces the bundle's own entropy.json (as the head's must match).

        `session` replaces the tail's own ONNX Runtime session (e.g. a TritonSession): anything with
        `provider` and `run(feeds)`. `batch_any` says that session takes frames in any number whatever
        the model's batch dimension (Triton sends each row as a request of its own).
        """
        self.bundle = bundle
        self.model_id = bundle.manifest.model_id
        self.cut = bundle.manifest.cut
        self.top_k = top_k
        self.max_elements = max_elements
        self.entropy_models = entropy_models if entropy_models is not None else load_entropy_models(bundle.path)
        # The head always sends batch 1; other dynamic sizes are unknown until the first message.
        shapes = {t.name: [1 if i == 0 and d < 0 else d for i, d in enumerate(t.shape)] for t in self.cut}
        known = all(d > 0 for shape in shapes.values() for d in shape)
        self.session: Session = session or InferenceSession(
            bundle.tail_path,
            providers,
            allow_cpu_fallback,
            warmup_runs=2 if known else 0,
            intra_op_threads=intra_op_threads,
            warmup_shapes=shapes,
        )
        self._dtypes = {t.name: np.dtype(t.dtype) for t in self.cut}
        self._output = bundle.manifest.output
        m = bundle.manifest
        self.decoder = (
            Decoder(m.detection, (m.input.width, m.input.height), bundle.labels) if m.detection is not None else None
        )
        # Frames may share a tail run only when the model takes any batch, from the input to every cut tensor.
        self.batch_dynamic = bundle.manifest.input.shape[0] == DYNAMIC and all(t.shape[0] == DYNAMIC for t in self.cut)
        self.batches = self.batch_dynamic or batch_any

    def check(self, model_id: str, tensors: Sequence[EncodedTensor]) -> None:
        """Raise FeaturesRejected unless the message matches this bundle's cut."""
        if model_id != self.model_id:
            raise FeaturesRejected(
                "model_id",
                f"model_id {model_id!r} is not this bundle's {self.model_id!r}: head and tail bundles differ",
            )
        if len(tensors) != len(self.cut):
            raise FeaturesRejected("tensor_count", f"expected {len(self.cut)} tensor(s), got {len(tensors)}")
        for tensor, spec in zip(tensors, self.cut):
            if tensor.name != spec.name:
                raise FeaturesRejected("tensor_name", f"expected tensor '{spec.name}', got '{tensor.name}'")
            shape = tuple(tensor.shape)
            _check_shape(spec.name, shape, spec.shape)

    def top1(self, features: Mapping[str, np.ndarray], batch: int = SCORE_BATCH) -> np.ndarray:
        """The best class of each of N frames from their decoded float cut tensors, as __call__ would rank it.

        `features[name]` stacks the frames' tensors as the head makes them: shape (N, *tensor shape).
        Calibration scores hundreds of re-encodings this way. Up to `batch` frames share one tail run
        only when the batch dimension is dynamic; a static-batch tail gets one frame at a time.
        """
        # argmax keeps the lowest class id among equal scores, as top_k does; softmax keeps the order.
        scores = self._scores(features, batch)
        return scores.argmax(axis=1) if len(scores) else np.empty(0, dtype=np.int64)

    def probabilities(self, features: Mapping[str, np.ndarray], batch: int = SCORE_BATCH) -> np.ndarray:
        """Each of N frames' class probabilities (N x classes), as __call__ would publish them: how sure the
        model is of a frame, and its top-k, for agreement statistics (splitcomp_tools.model.agreement)."""
        scores = self._scores(features, batch)
        return softmax(scores, axis=1) if self._output.kind == "logits" else scores.astype(np.float64)

    def detections(self, features: Mapping[str, np.ndarray], batch: int = SCORE_BATCH) -> list[list[Detection]]:
        """Each of N stacked frames' boxes, in the model input's pixels, as __call__ would decode them: what a
        detection bundle's agreement compares (boxes of the same frames share one scale, split or not)."""
        if self.decoder is None:
            raise FeaturesRejected("postprocess", "detections() needs a detection bundle; this one classifies")
        outputs = self._outputs(features, batch, self.decoder.tensor_names)
        count = len(next(iter(outputs.values())))
        size = self.decoder.input_size
        frames: list[list[Detection]] = []
        for i in range(count):
            try:
                found = self.decoder({n: rows[i : i + 1] for n, rows in outputs.items()}, size)
            except DetectionRejected:  # NaN or Inf in a frame's outputs: no boxes, as the node publishes none
                frames.append([])
                continue
            frames.append(found.detections)
        return frames

    def _scores(self, features: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
        """The tail's raw scores of N stacked frames, one row per frame."""
        rows = self._outputs(features, batch, [self._output.name])[self._output.name]
        return rows.reshape(len(rows), -1) if rows.size else np.empty((0, 0), dtype=np.float32)

    def _outputs(self, features: Mapping[str, np.ndarray], batch: int, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The tail's outputs `names` of N stacked frames, each stacked to shape (N, *one frame's shape)."""
        if set(features) != {t.name for t in self.cut}:
            raise FeaturesRejected(
                "tensor_name", f"expected tensors {[t.name for t in self.cut]}, got {sorted(features)}"
            )
        counts = {len(a) for a in features.values()}
        if len(counts) != 1:
            raise FeaturesRejected(
                "tensor_count", f"the cut tensors hold different numbers of frames: {sorted(counts)}"
            )
        count = counts.pop()
        for spec in self.cut:
            _check_shape(spec.name, features[spec.name].shape[1:], spec.shape)
        step = max(1, batch) if self.batch_dynamic else 1
        rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for start in range(0, count, step):
            stop = min(count, start + step)
            feeds = {
                t.name: features[t.name][start:stop]
                .reshape((-1, *features[t.name].shape[2:]))
                .astype(self._dtypes[t.name], copy=False)
                for t in self.cut
            }
            outputs = self.session.run(feeds)
            for name in names:
                value = np.asarray(outputs[name])
                framed = value.ndim > 1 and value.shape[0] == stop - start  # else: one flat row per frame
                rows[name].append(value if framed else value.reshape(stop - start, -1))
        return {
            name: np.concatenate(parts) if parts else np.empty((0,), dtype=np.float32) for name, parts in rows.items()
        }

    def decode(
        self,
        model_id: str,
        tensors: Sequence[EncodedTensor],
        reference_sequence: int = 0,
        reference: Reference | None = None,
        image_size: tuple[int, int] = (0, 0),
    ) -> Decoded:
        """Check and decode one message; a P-frame (reference_sequence > 0) only against exactly that `reference`.

        Rejections come in this order: the cut (model_id, tensor_count, tensor_name, shape), `entropy_model` (a
        model this bundle does not hold), `missing_reference`, `codec` (malformed data), `non_finite`.
        `image_size` is the camera frame's (width, height): a detection bundle maps its boxes to it when it answers.
        """
        self.check(model_id, tensors)
        try:
            tables = [entropy_table(t, self.entropy_models) for t in tensors]
        except EntropyModelError as exc:
            raise FeaturesRejected("entropy_model", str(exc)) from exc
        codes_of = _reference_codes(model_id, tensors, reference_sequence, reference)
        t0 = time.perf_counter()
        feeds, codes = {}, {}
        try:
            for t, table in zip(tensors, tables):
                values, codes[t.name] = decode_tensor(t, table, codes_of.get(t.name), self.max_elements)
                feeds[t.name] = values.astype(self._dtypes[t.name], copy=False)
        except CodecError as exc:
            raise FeaturesRejected("codec", str(exc)) from exc
        for name, values in feeds.items():
            _require_finite(values, f"tensor '{name}'")
        whole = {name: c for name, c in codes.items() if c is not None}
        return Decoded(
            feeds,
            whole if len(whole) == len(codes) else None,
            (time.perf_counter() - t0) * 1e3,
            payload_bytes(tensors),
            image_size,
        )

    def __call__(
        self,
        model_id: str,
        tensors: Sequence[EncodedTensor],
        reference_sequence: int = 0,
        reference: Reference | None = None,
        image_size: tuple[int, int] = (0, 0),
    ) -> TailResult:
        return self.answer(self.decode(model_id, tensors, reference_sequence, reference, image_size))

    def answer(self, decoded: Decoded) -> TailResult:
        """The tail model and the top-k on decoded features."""
        result = self.answer_batch([decoded])[0]
        if isinstance(result, FeaturesRejected):
            raise result
        return result

    def answer_batch(self, frames: Sequence[Decoded]) -> list[TailResult | FeaturesRejected]:
        """Each frame's answer, or why it has none, from one tail run over all of them when the tail batches.

        A static-batch tail (`batches` false) runs them one at a time. A failed run rejects every frame
        it held; a frame whose own scores are not finite or not class scores rejects only that frame.
        The session's own errors that are not InferenceError (a BackendUnavailable) propagate.
        """
        if not frames:
            return []
        if not self.batches and len(frames) > 1:
            return [r for d in frames for r in self.answer_batch([d])]
        t1 = time.perf_counter()
        feeds = frames[0].feeds if len(frames) == 1 else _stacked([d.feeds for d in frames])
        try:
            outputs = {name: np.asarray(value) for name, value in self.session.run(feeds).items()}
        except InferenceError as exc:
            rejected = FeaturesRejected("inference", str(exc))
            return [rejected for _ in frames]
        tail_ms = (time.perf_counter() - t1) * 1e3 / len(frames)
        used = self.decoder.tensor_names if self.decoder is not None else [self._output.name]
        odd = [list(outputs[n].shape) for n in used if outputs[n].ndim < 1 or outputs[n].shape[0] != len(frames)]
        if len(frames) > 1 and odd:
            rejected = FeaturesRejected(
                "postprocess", f"the tail answered {odd[0]} for a batch of {len(frames)} frames"
            )
            return [rejected for _ in frames]
        if len(frames) == 1:
            rows = [{n: outputs[n] for n in used}]
        else:
            rows = [{n: outputs[n][i : i + 1] for n in used} for i in range(len(frames))]
        if self.decoder is not None:
            return [self._detected(d, row, tail_ms) for d, row in zip(frames, rows)]
        return [self._ranked(d, row[self._output.name], tail_ms) for d, row in zip(frames, rows)]

    def _detected(
        self, decoded: Decoded, outputs: dict[str, np.ndarray], tail_ms: float
    ) -> TailResult | FeaturesRejected:
        """A detection bundle's boxes for one frame, in its camera pixels."""
        assert self.decoder is not None
        t2 = time.perf_counter()
        try:
            found = self.decoder(outputs, decoded.image_size)
        except DetectionRejected as exc:
            return FeaturesRejected(exc.reason, str(exc))
        return TailResult(
            results=[],
            feature_bytes=decoded.feature_bytes,
            decode_ms=decoded.decode_ms,
            tail_ms=tail_ms,
            post_ms=(time.perf_counter() - t2) * 1e3,
            codes=decoded.codes,
            detections=found.detections,
            dropped_boxes=found.dropped_zero_size,
        )

    def _ranked(self, decoded: Decoded, scores: np.ndarray, tail_ms: float) -> TailResult | FeaturesRejected:
        t2 = time.perf_counter()
        try:
            _require_finite(scores, "the tail's output for these features")
        except FeaturesRejected as exc:
            return exc
        row = scores.reshape(-1) if scores.ndim <= 1 else scores.reshape(scores.shape[0], -1)[0]
        try:
            results = top_k_labelled(row, self.top_k, self.bundle.labels, self._output.kind)
        except ValueError as exc:
            return FeaturesRejected("postprocess", f"the tail's output {list(scores.shape)} is not class scores: {exc}")
        return TailResult(
            results=results,
            feature_bytes=decoded.feature_bytes,
            decode_ms=decoded.decode_ms,
            tail_ms=tail_ms,
            post_ms=(time.perf_counter() - t2) * 1e3,
            codes=decoded.codes,
        )


def _stacked(feeds: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Frames' feeds (each of batch 1) as one batch, in their order."""
    return {name: np.concatenate([f[name] for f in feeds], axis=0) for name in feeds[0]}


def _reference_codes(
    model_id: str, tensors: Sequence[EncodedTensor], reference_sequence: int, reference: Reference | None
) -> dict[str, np.ndarray]:
    """The codes a P-frame adds its differences to: only those of exactly the frame it names, of its cut and shapes."""
    if not reference_sequence:
        return {}
    if reference is None or reference.sequence != reference_sequence or reference.model_id != model_id:
        held = "none" if reference is None else f"#{reference.sequence}"
        raise FeaturesRejected(
            "missing_reference",
            f"a P-frame coded against #{reference_sequence}, but the tail holds {held} from this sender (of this cut); "
            f"waiting for its next key frame",
        )
    for t in tensors:
        ref = reference.codes.get(t.name)
        if ref is None or ref.shape != tuple(int(d) for d in t.shape):
            raise FeaturesRejected(
                "missing_reference", f"the reference #{reference.sequence} holds no codes of '{t.name}' in this shape"
            )
    return dict(reference.codes)


def _require_finite(values: np.ndarray, what: str) -> None:
    """Refuse NaN and infinities: the tail must never publish a NaN "probability".

    Finite features can still overflow inside the tail (values of 3e38 sum to infinity), so the
    output is checked as well as the decoded input.
    """
    if not np.isfinite(values).all():
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise FeaturesRejected("non_finite", f"{what} holds {bad} NaN or infinite value(s) of {values.size}")


def _check_shape(name: str, shape: Sequence[int], declared: Sequence[int]) -> None:
    """One frame's tensor against the manifest's shape: the head sends batch 1, other dynamic sizes match any."""
    expected = [1 if i == 0 and d < 0 else d for i, d in enumerate(declared)]
    if len(shape) != len(expected) or any(d != e for d, e in zip(shape, expected) if e >= 0):
        raise FeaturesRejected("shape", f"tensor '{name}' has shape {list(shape)}, expected {expected}")

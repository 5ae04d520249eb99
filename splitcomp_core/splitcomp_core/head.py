"""The robot side, without ROS: frame -> model input -> head model -> encoded cut tensors.

The head node, the pipeline benchmark and calibration all run frames through this one class,
so what is measured is what is deployed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import numpy as np

from splitcomp_core.bundle import Bundle
from splitcomp_core.codec import RAW_BITS, EncodedTensor, QuantParams
from splitcomp_core.entropy import EntropyModels, EntropyTable, load_entropy_models
from splitcomp_core.interframe import encode_tensor
from splitcomp_core.preprocess import Preprocessor
from splitcomp_core.quantization import EncoderConfig, resolve_params
from splitcomp_core.runtime import DEFAULT_PROVIDERS, InferenceSession


@dataclasses.dataclass
class HeadResult:
    tensors: list[EncodedTensor]
    preprocess_ms: float
    head_ms: float
    encode_ms: float
    codes: dict[str, np.ndarray] | None = None  # each tensor's codes (None for raw floats): a later P-frame's reference
    reference_sequence: int = 0  # 0: a key frame; else the frame these tensors are the difference to


@dataclasses.dataclass(frozen=True)
class _Encoding:
    config: EncoderConfig
    params: dict[str, QuantParams | None]
    tables: dict[str, EntropyTable | None]  # the entropy model of each tensor under codec entropy


class HeadPipeline:
    """Owns the head's ONNX Runtime session (created once) and the current encoder settings.

    Without a `config`, the bundle's own quantization defaults apply. The bundle's entropy models (if any)
    are loaded once; codec `entropy` is refused for an encoding they do not cover.
    """

    def __init__(
        self,
        bundle: Bundle,
        config: EncoderConfig | None = None,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        allow_cpu_fallback: bool = True,
        intra_op_threads: int | None = None,
        entropy_models: EntropyModels | None = None,
    ) -> None:
        """`entropy_models` replaces the bundle's own entropy.json (a benchmark's or calibration's fresh fit)."""
        self.bundle = bundle
        self.cut_names = [t.name for t in bundle.manifest.cut]
        self.entropy_models = entropy_models if entropy_models is not None else load_entropy_models(bundle.path)
        self.preprocess = Preprocessor(bundle.manifest.input)
        spec = bundle.manifest.input
        self.session = InferenceSession(
            bundle.head_path,
            providers,
            allow_cpu_fallback,
            intra_op_threads=intra_op_threads,
            warmup_shapes={spec.name: [1, 3, spec.height, spec.width]},
        )
        self._input_name = spec.name
        self._encoding: _Encoding
        self.warnings = self.configure(config or EncoderConfig.from_manifest(bundle.manifest.quantization))

    @property
    def config(self) -> EncoderConfig:
        return self._encoding.config

    @property
    def encoding(self) -> object:
        """The encoder settings in force, as one object that configure() replaces: the inter-frame coder starts
        a key frame when it changes."""
        return self._encoding

    def configure(self, config: EncoderConfig) -> list[str]:
        """Validate and switch encoder settings (atomically: a frame in flight keeps the old ones)."""
        config = config.validated()
        calibrated = self.bundle.manifest.quantization.calibrated
        params, tables, warnings = {}, {}, []
        for name in self.cut_names:
            params[name], warning = resolve_params(config, name, calibrated)
            entropy = config.codec == "entropy" and config.bits not in RAW_BITS
            tables[name] = self.entropy_models.for_encoding(name, config.bits, config.mode) if entropy else None
            if warning:
                warnings.append(warning)
        self._encoding = _Encoding(config, params, tables)
        return warnings

    def features(self, image: np.ndarray, encoding: str = "rgb8") -> tuple[dict[str, np.ndarray], float, float]:
        """The cut tensors as floats, with preprocess and head milliseconds (no encoding)."""
        t0 = time.perf_counter()
        model_input = self.preprocess(image, encoding)
        t1 = time.perf_counter()
        features = self.cut_tensors(model_input)
        t2 = time.perf_counter()
        return features, (t1 - t0) * 1e3, (t2 - t1) * 1e3

    def cut_tensors(self, model_input: np.ndarray) -> dict[str, np.ndarray]:
        """The head model on an already preprocessed 1x3xHxW input (e.g. a JPEG of the model-size image)."""
        outputs = self.session.run({self._input_name: model_input})
        return {name: outputs[name] for name in self.cut_names}

    def encode(self, features: dict[str, np.ndarray]) -> list[EncodedTensor]:
        return self.encode_codes(features)[0]

    def encode_codes(
        self, features: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray] | None = None
    ) -> tuple[list[EncodedTensor], dict[str, np.ndarray] | None]:
        """The tensors of one frame, intra or as the difference to `reference` codes, and the frame's own codes
        (None when it sends raw floats). Any reference decodes exactly (the difference is modulo 2**bits); one
        made under other settings only costs bytes."""
        encoding = self._encoding
        codec, raw_bits = encoding.config.codec_id, encoding.config.bits
        tensors, codes = [], {}
        for name in self.cut_names:
            ref = None if reference is None else reference[name]
            tensor, codes[name] = encode_tensor(
                name, features[name], encoding.params[name], codec, raw_bits, encoding.tables[name], ref
            )
            tensors.append(tensor)
        whole = {name: c for name, c in codes.items() if c is not None}
        return tensors, (whole if len(whole) == len(codes) else None)

    def __call__(
        self, image: np.ndarray, encoding: str = "rgb8", reference: Mapping[str, np.ndarray] | None = None
    ) -> HeadResult:
        """One frame: intra, or coded against the `reference` codes of an earlier frame (a P-frame)."""
        features, preprocess_ms, head_ms = self.features(image, encoding)
        t0 = time.perf_counter()
        tensors, codes = self.encode_codes(features, reference)
        return HeadResult(tensors, preprocess_ms, head_ms, (time.perf_counter() - t0) * 1e3, codes)

"""HeadPipeline and TailPipeline on a real (tiny) bundle in ONNX Runtime: encode, check, decode, classify."""

import dataclasses

import numpy as np
import pytest
from onnx import TensorProto, helper
from tiny_models import TINY_CONV_W, TINY_FC_W, TINY_LABELS, onnx_model

from splitcomp_core.bundle import InputSpec, Manifest, OutputSpec, QuantizationSpec, TensorSpec, write_bundle
from splitcomp_core.codec import CODEC_LZ4, decode
from splitcomp_core.head import HeadPipeline
from splitcomp_core.postprocess import softmax
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.tail import FeaturesRejected, TailPipeline

LABELS = TINY_LABELS
RNG = np.random.default_rng(5)


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return tiny_bundle


@pytest.fixture(scope="module")
def frames():
    return [RNG.integers(0, 256, (24, 20, 3), dtype=np.uint8) for _ in range(8)]


def reference_probs(head, tail, image):
    features, _, _ = head.features(image, "rgb8")
    logits = tail.session.run(features)["logits"][0]
    return softmax(logits)


def test_raw_float32_features_classify_exactly_like_the_float_model(bundle, frames):
    head = HeadPipeline(bundle, EncoderConfig(bits=32), providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"], top_k=5)
    for image in frames:
        result = head(image, "rgb8")
        out = tail(bundle.manifest.model_id, result.tensors)
        probs = reference_probs(head, tail, image)
        assert [c for c, _, _ in out.results] == list(np.argsort(-probs, kind="stable"))
        np.testing.assert_allclose([p for _, _, p in out.results], np.sort(probs)[::-1], rtol=1e-6)
        assert out.feature_bytes == 4 * 16 * 16 * 4
        assert out.results[0][1] == LABELS[out.results[0][0]]


@pytest.mark.parametrize("mode", ["clip", "calibrated", "per_channel"])
def test_quantized_modes_stay_close_to_float(bundle, frames, mode):
    head = HeadPipeline(bundle, EncoderConfig(bits=8, mode=mode, clip_max=6.0, codec="zstd"), providers=["cpu"])
    assert head.warnings == []
    for image in frames[:3]:
        features, _, _ = head.features(image, "rgb8")
        (tensor,) = head.encode(features)
        lo = tensor.offset.reshape(1, -1, 1, 1)
        hi = lo + tensor.scale.reshape(1, -1, 1, 1) * 255
        err = np.abs(decode(tensor) - np.clip(features["feat"], lo, hi))
        assert err.max() <= tensor.scale.max() / 2 + 1e-5
        assert (features["feat"] > 3.0).any(), "the frames must exercise the ranges"


def test_missing_calibration_falls_back_to_clip_with_a_warning(bundle):
    stripped = dataclasses.replace(
        bundle, manifest=dataclasses.replace(bundle.manifest, quantization=QuantizationSpec())
    )
    head = HeadPipeline(stripped, EncoderConfig(mode="per_channel"), providers=["cpu"])
    assert len(head.warnings) == 1 and "calibrate" in head.warnings[0]
    assert head.encode({"feat": np.ones((1, 4, 16, 16), np.float32)})[0].scale.size == 1


def test_configure_switches_bits_and_codec_for_the_next_frame(bundle, frames):
    head = HeadPipeline(bundle, EncoderConfig(bits=4), providers=["cpu"])
    before = head(frames[0]).tensors[0]
    head.configure(EncoderConfig(bits=2, codec="lz4"))
    after = head(frames[0]).tensors[0]
    assert (before.bits, after.bits, after.codec) == (4, 2, CODEC_LZ4)
    with pytest.raises(ValueError, match="bits"):
        head.configure(EncoderConfig(bits=9))
    assert head.config.bits == 2


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda m, t: ("sha256:other", t), "model_id"),
        (lambda m, t: (m, t + t), "tensor_count"),
        (lambda m, t: (m, [dataclasses.replace(t[0], name="other")]), "tensor_name"),
        (lambda m, t: (m, [dataclasses.replace(t[0], shape=(1, 4, 8, 32))]), "shape"),
        (lambda m, t: (m, [dataclasses.replace(t[0], data=t[0].data[:-3])]), "codec"),
        (lambda m, t: (m, [dataclasses.replace(t[0], bits=9)]), "codec"),
    ],
)
def test_tail_rejects_with_a_reason(bundle, frames, spoil, reason):
    head = HeadPipeline(bundle, EncoderConfig(bits=4), providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"])
    model_id, tensors = spoil(bundle.manifest.model_id, head(frames[0]).tensors)
    with pytest.raises(FeaturesRejected) as info:
        tail(model_id, tensors)
    assert info.value.reason == reason
    assert tail(bundle.manifest.model_id, head(frames[0]).tensors).results


def variant_bundle(tmp_path, head_nodes, head_out_type, tail_nodes, tail_in_type, logits_shape, batch="N"):
    """A bundle of the same conv head and linear tail with a dynamic batch and a chosen cut dtype."""
    head = onnx_model(
        [
            helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            *head_nodes,
        ],
        {"image": [batch, 3, 16, 16]},
        [helper.make_tensor_value_info("feat", head_out_type, [batch, 4, 16, 16])],
        {"w": TINY_CONV_W},
        check=False,
    ).SerializeToString()
    tail = onnx_model(
        [
            *tail_nodes,
            helper.make_node("GlobalAveragePool", ["f32"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("MatMul", ["f", "fc"], ["m"]),
            helper.make_node("Reshape", ["m", "logits_shape"], ["logits"]),
        ],
        [helper.make_tensor_value_info("feat", tail_in_type, [batch, 4, 16, 16])],
        {"logits": logits_shape},
        {"fc": TINY_FC_W, "logits_shape": np.array(logits_shape, np.int64)},
        check=False,
    ).SerializeToString()
    dtype = "float16" if head_out_type == TensorProto.FLOAT16 else "float32"
    manifest = Manifest(
        format_version=1,
        model_id="",
        source="test",
        cut=[TensorSpec("feat", [-1, 4, 16, 16], dtype)],
        input=InputSpec("image", [-1, 3, 16, 16], 16, 16, "RGB", [0.5] * 3, [0.25] * 3),
        output=OutputSpec("logits", logits_shape),
    )
    return write_bundle(tmp_path / "variant", head, tail, manifest, LABELS)


def test_float16_cut_and_flat_output_classify(tmp_path, frames):
    bundle = variant_bundle(
        tmp_path,
        [helper.make_node("Cast", ["r"], ["feat"], to=TensorProto.FLOAT16)],
        TensorProto.FLOAT16,
        [helper.make_node("Cast", ["feat"], ["f32"], to=TensorProto.FLOAT)],
        TensorProto.FLOAT16,
        logits_shape=[5],
    )
    head = HeadPipeline(bundle, EncoderConfig(bits=32), providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"], top_k=2)
    features, _, _ = head.features(frames[0], "rgb8")
    expected = np.argsort(-tail.session.run(features)["logits"], kind="stable")[:2]
    got = tail(bundle.manifest.model_id, head(frames[0]).tensors)
    assert [c for c, _, _ in got.results] == list(expected)


def test_dynamic_batch_must_be_one(tmp_path, frames):
    bundle = variant_bundle(
        tmp_path,
        [helper.make_node("Identity", ["r"], ["feat"])],
        TensorProto.FLOAT,
        [helper.make_node("Identity", ["feat"], ["f32"])],
        TensorProto.FLOAT,
        logits_shape=[1, 5],
    )
    head = HeadPipeline(bundle, EncoderConfig(bits=8, clip_max=6.0), providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"])
    (tensor,) = head(frames[0]).tensors
    assert tensor.shape == (1, 4, 16, 16) and tail(bundle.manifest.model_id, [tensor]).results
    batch_of_8 = dataclasses.replace(tensor, shape=(8, 4, 16, 16))
    with pytest.raises(FeaturesRejected) as info:
        tail(bundle.manifest.model_id, [batch_of_8])
    assert info.value.reason == "shape"


def test_without_a_config_the_head_uses_the_bundles_defaults(bundle):
    defaults = dataclasses.replace(bundle.manifest.quantization, bits=3, mode="per_channel", codec="lz4")
    custom = dataclasses.replace(bundle, manifest=dataclasses.replace(bundle.manifest, quantization=defaults))
    head = HeadPipeline(custom, providers=["cpu"])
    assert (head.config.bits, head.config.mode, head.config.codec) == (3, "per_channel", "lz4")


def _stacked(head, frames):
    """Each frame's float cut tensors, stacked per tensor: what calibration hands TailPipeline.top1."""
    per_frame = [head.features(f, "rgb8")[0] for f in frames]
    return {name: np.stack([p[name] for p in per_frame]) for name in head.cut_names}


def _count_runs(tail):
    """Record the batch size of every tail run (a wrapper around our own session, the real ORT run inside)."""
    batches = []
    run = tail.session.run

    def counted(feeds):
        batches.append(next(iter(feeds.values())).shape[0])
        return run(feeds)

    tail.session.run = counted
    return batches


def _one_by_one(bundle, head, tail, frames):
    raw = HeadPipeline(bundle, EncoderConfig(bits=32), providers=["cpu"])
    return [tail(bundle.manifest.model_id, raw(f).tensors).results[0][0] for f in frames]


@pytest.mark.parametrize("cut_shape", [[1, 4, 16, 16], [-1, 4, -1, -1]], ids=["static", "static-unknown-dims"])
def test_top1_feeds_a_static_batch_tail_one_frame_at_a_time(bundle, frames, cut_shape):
    """A static-batch tail (input batch 1) is never fed stacked frames, even when the manifest's cut says -1."""
    manifest = dataclasses.replace(bundle.manifest, cut=[dataclasses.replace(bundle.manifest.cut[0], shape=cut_shape)])
    static = dataclasses.replace(bundle, manifest=manifest)
    head = HeadPipeline(static, providers=["cpu"])
    tail = TailPipeline(static, ["cpu"])
    assert not tail.batch_dynamic
    batches = _count_runs(tail)
    got = tail.top1(_stacked(head, frames))
    assert batches == [1] * len(frames)
    assert list(got) == _one_by_one(static, head, tail, frames)


def test_top1_batches_frames_when_the_batch_is_dynamic(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (255, 255, 0), (0, 255, 255)]
    frames = [np.full((24, 20, 3), c, np.uint8) for c in colours]
    bundle = variant_bundle(
        tmp_path,
        [helper.make_node("Identity", ["r"], ["feat"])],
        TensorProto.FLOAT,
        [helper.make_node("Identity", ["feat"], ["f32"])],
        TensorProto.FLOAT,
        logits_shape=[-1, 5],
    )
    head = HeadPipeline(bundle, providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"])
    assert tail.batch_dynamic
    batches = _count_runs(tail)
    got = tail.top1(_stacked(head, frames), batch=3)
    assert batches == [3, 3, 1]
    assert list(got) == _one_by_one(bundle, head, tail, frames)
    assert len(set(got)) > 1, "the frames must not all get one class, or agreement would mean little"


def test_top1_refuses_tensors_that_do_not_fit_the_cut(bundle, frames):
    head = HeadPipeline(bundle, providers=["cpu"])
    tail = TailPipeline(bundle, ["cpu"])
    stacked = _stacked(head, frames[:2])
    with pytest.raises(FeaturesRejected) as info:
        tail.top1({"feat": stacked["feat"][:, :, :2]})
    assert info.value.reason == "shape"
    with pytest.raises(FeaturesRejected) as info:
        tail.top1({"other": stacked["feat"]})
    assert info.value.reason == "tensor_name"

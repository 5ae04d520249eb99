"""Inter-frame coding: P-frames decode to the codes of intra coding bit for bit, under every codec; the head's
key-frame schedule ends a chain on every loss; the tail decodes a P-frame only against exactly its reference."""

import dataclasses

import numpy as np
import pytest
from drifting import video_frames

from splitcomp_core.codec import CODEC_ENTROPY, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, range_params
from splitcomp_core.cuts import HeadCuts, TailCuts
from splitcomp_core.entropy import fit_table
from splitcomp_core.errors import CodecError
from splitcomp_core.head import HeadPipeline
from splitcomp_core.interframe import decode_tensor, encode_tensor
from splitcomp_core.keyframes import InterFrameHead, KeyframeSchedule
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import sender_key
from splitcomp_core.tail import FeaturesRejected, TailPipeline

SHAPE = (1, 3, 8, 8)
CODECS = [CODEC_NONE, CODEC_ZSTD, CODEC_LZ4, CODEC_ENTROPY]
SENDER = sender_key("splitcomp/features", "camera", "model")


def drifting(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal(SHAPE), 0).astype(np.float32) * 4
    out = []
    for _ in range(count):
        x = np.maximum(x + rng.standard_normal(SHAPE).astype(np.float32) * 0.3, 0)
        out.append(x.copy())
    return out


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("codec", CODECS)
def test_p_frames_decode_to_the_intra_codes_bit_for_bit(bits, codec):
    params = range_params(bits, np.zeros(3), np.array([6.0, 5.0, 4.0]))
    frames = drifting(6)
    table = None
    if codec == CODEC_ENTROPY:
        codes = [encode_tensor("t", x, params, CODEC_NONE)[1] for x in frames]
        table = fit_table("t", bits, "per_channel", codes)
    reference = None
    for x in frames:
        intra, codes = encode_tensor("t", x, params, codec, table=table)
        inter, same = encode_tensor("t", x, params, codec, table=table, reference=reference)
        assert np.array_equal(codes, same)
        want, want_codes = decode_tensor(intra, table)
        got, got_codes = decode_tensor(inter, table, reference)
        assert np.array_equal(got_codes, want_codes) and np.array_equal(got_codes, codes)
        assert got.tobytes() == want.tobytes(), "the features must be the intra ones, bit for bit"
        assert inter.entropy_model == (table.digest if table else "")
        reference = codes


def test_a_reference_of_other_settings_still_decodes_exactly_it_only_costs_bytes():
    x, y = drifting(2)
    old = encode_tensor("t", x, range_params(3, 0.0, 6.0), CODEC_ZSTD)[1]
    params = range_params(7, 0.0, 5.0)
    tensor, codes = encode_tensor("t", y, params, CODEC_ZSTD, reference=old)
    assert np.array_equal(decode_tensor(tensor, None, old)[1], codes)


def test_raw_floats_are_never_coded_against_a_reference():
    x = drifting(1)[0]
    with pytest.raises(CodecError, match="raw floats"):
        encode_tensor("t", x, None, CODEC_ZSTD, reference=np.zeros(SHAPE, np.uint8))
    raw, codes = encode_tensor("t", x, None, CODEC_ZSTD)
    assert codes is None
    with pytest.raises(CodecError, match="raw floats"):
        decode_tensor(raw, None, np.zeros(SHAPE, np.uint8))


def test_a_key_frame_every_interval_frames_and_none_between():
    settings = object()
    schedule = KeyframeSchedule(interval=4)
    refs = []
    for sequence in range(1, 11):
        ref, codes = schedule.reference(sequence, "", settings, sequence * 0.1)
        assert (codes is None) == (ref == 0)
        schedule.sent(sequence, "", settings, {"t": np.zeros(1, np.uint8)}, ref, sequence * 0.1)
        schedule.answered(sequence)
        refs.append(ref)
    assert refs == [0, 1, 2, 3, 0, 5, 6, 7, 0, 9]
    assert (schedule.key_frames, schedule.p_frames, schedule.losses) == (3, 7, 0)
    for interval in (0, 1):  # off, and a key frame every frame
        schedule.set_interval(interval)
        for sequence in range(11, 14):
            ref, _ = schedule.reference(sequence, "", settings, 2.0)
            assert ref == 0
            schedule.sent(sequence, "", settings, {"t": np.zeros(1, np.uint8)}, ref, 2.0)
    assert not KeyframeSchedule(0).listens and KeyframeSchedule(2).listens


def test_a_cut_switch_new_settings_or_raw_floats_start_a_key_frame():
    schedule = KeyframeSchedule(interval=100)
    settings, other = object(), object()
    codes = {"t": np.zeros(1, np.uint8)}
    schedule.sent(1, "a", settings, codes, 0, 0.0)
    schedule.answered(1)
    assert schedule.reference(2, "a", settings, 0.1)[0] == 1
    assert schedule.reference(2, "b", settings, 0.1)[0] == 0, "another cut"
    assert schedule.reference(2, "a", other, 0.1)[0] == 0, "other encoder settings"
    schedule.sent(2, "a", settings, None, 0, 0.1)  # raw floats
    schedule.answered(2)
    assert schedule.reference(3, "a", settings, 0.2)[0] == 0


def test_previous_an_unanswered_frame_after_the_timeout_makes_the_next_a_key_frame():
    schedule = KeyframeSchedule(interval=100, timeout_s=0.5, mode="previous")
    settings, codes = object(), {"t": np.zeros(1, np.uint8)}
    schedule.sent(1, "", settings, codes, 0, 0.0)
    schedule.answered(1)
    schedule.sent(2, "", settings, codes, 1, 0.1)  # never answered (the tail rejected it)
    assert schedule.reference(3, "", settings, 0.55)[0] == 2, "not yet overdue"
    schedule.sent(3, "", settings, codes, 2, 0.55)
    assert schedule.reference(4, "", settings, 0.61)[0] == 0
    assert schedule.losses == 1
    schedule.sent(4, "", settings, codes, 0, 0.61)  # the key frame clears what was pending
    schedule.answered(3)  # a late answer from before the key frame changes nothing
    assert schedule.reference(5, "", settings, 0.7)[0] == 4 and schedule.losses == 1


def test_previous_an_answer_that_skips_a_frame_makes_the_next_a_key_frame():
    schedule = KeyframeSchedule(interval=100, timeout_s=60, mode="previous")
    settings, codes = object(), {"t": np.zeros(1, np.uint8)}
    for sequence in (1, 2, 3):
        schedule.sent(sequence, "", settings, codes, sequence - 1, 0.0)
    schedule.answered(1)
    schedule.answered(3)  # 2 was never answered
    assert schedule.reference(4, "", settings, 0.1)[0] == 0 and schedule.losses == 1
    schedule.answered(999)  # an answer to another head on the same topic is ignored
    schedule.sent(4, "", settings, codes, 0, 0.1)
    schedule.answered(999)
    assert schedule.reference(5, "", settings, 0.2)[0] == 4 and schedule.losses == 1


def test_interval_and_timeout_are_checked():
    for bad in (-1, 1.5, True, "3", 10_001):
        with pytest.raises(ValueError, match="keyframe_interval"):
            KeyframeSchedule(interval=bad)
    for bad in (0, -1.0, True, 4000):
        with pytest.raises(ValueError, match="keyframe_timeout_s"):
            KeyframeSchedule(timeout_s=bad)


@pytest.fixture(scope="module")
def sides(tiny_entropy_bundle):
    head = HeadCuts(tiny_entropy_bundle, providers=["cpu"])
    tail = TailCuts(tiny_entropy_bundle, providers=["cpu"])
    return head, tail


@pytest.mark.parametrize("codec", ["zstd", "entropy", "none"])
def test_pipelines_answer_a_video_with_p_frames_exactly_as_with_key_frames_only(sides, tiny_entropy_bundle, codec):
    heads, tails = sides
    heads.configure({"codec": codec, "bits": 4, "mode": "per_channel"})
    model_id = tiny_entropy_bundle.manifest.model_id
    intra = HeadPipeline(tiny_entropy_bundle, heads.pipelines[""].config, providers=["cpu"])
    reference_tail = TailPipeline(tiny_entropy_bundle, ["cpu"])
    coder = InterFrameHead(heads, KeyframeSchedule(interval=5))
    receiver = InterFrameTail(tails)
    p_bytes, key_bytes = 0, 0
    for sequence, frame in enumerate(video_frames(15, seed=3), start=1):
        result = coder(sequence, "", frame, "rgb8", sequence * 0.05)
        assert result.reference_sequence == (0 if sequence % 5 == 1 else sequence - 1)
        answer = receiver(SENDER, sequence, result.reference_sequence, "", model_id, result.tensors)
        coder.schedule.answered(sequence)
        alone = intra(frame)
        want = reference_tail(model_id, alone.tensors)
        assert answer.codes is not None and np.array_equal(answer.codes["feat"], alone.codes["feat"])
        assert answer.results == want.results, "agreement cannot change"
        if result.reference_sequence:
            p_bytes += answer.feature_bytes
            key_bytes += want.feature_bytes
    assert coder.schedule.p_frames == 12
    if codec != "none":
        assert p_bytes < key_bytes, "a drifting scene's differences code in fewer bytes"


def test_the_tail_keeps_its_references_after_a_missing_one(sides, tiny_entropy_bundle):
    heads, tails = sides
    heads.configure({"codec": "zstd", "bits": 4})
    model_id = tiny_entropy_bundle.manifest.model_id
    coder = InterFrameHead(heads, KeyframeSchedule(interval=100, mode="previous"))
    frames = video_frames(8, seed=4)
    sent = [coder(i, "", frame, "rgb8", 0.0) for i, frame in enumerate(frames[:6], start=1)]
    receiver = InterFrameTail(tails)
    other = sender_key("robot2/splitcomp/features", "camera", "model")
    receiver(SENDER, 1, 0, "", model_id, sent[0].tensors)
    receiver(other, 1, 0, "", model_id, sent[0].tensors)
    receiver(SENDER, 2, 1, "", model_id, sent[1].tensors)
    # frame 3 is lost: 4 names 3, which the tail never held
    with pytest.raises(FeaturesRejected, match=r"holds 2 frame\(s\), #1\.\.#2") as info:
        receiver(SENDER, 4, 3, "", model_id, sent[3].tensors)
    assert info.value.reason == "missing_reference"
    receiver(SENDER, 3, 2, "", model_id, sent[2].tensors)  # a late frame naming a held reference still decodes
    with pytest.raises(FeaturesRejected) as info:
        receiver(other, 3, 2, "", model_id, sent[2].tensors)  # the other sender holds only its own frame 1
    assert info.value.reason == "missing_reference"
    key = heads.pipelines[""](frames[6])
    receiver(SENDER, 7, 0, "", model_id, key.tensors)
    assert receiver.senders() == 2


@pytest.mark.parametrize(
    ("sequence", "reference"),
    [(5, 5), (5, 6), (0, 1), (5, 4)],  # itself, a later frame, before any frame, one the tail does not hold
)
def test_references_to_itself_later_or_unknown_frames_are_missing(sides, tiny_entropy_bundle, sequence, reference):
    heads, tails = sides
    heads.configure({"codec": "zstd", "bits": 4})
    model_id = tiny_entropy_bundle.manifest.model_id
    frame = video_frames(1)[0]
    receiver = InterFrameTail(tails)
    receiver(SENDER, 3, 0, "", model_id, heads.pipelines[""](frame).tensors)
    p_frame = heads.pipelines[""](frame, reference=heads.pipelines[""](frame).codes)
    with pytest.raises(FeaturesRejected) as info:
        receiver(SENDER, sequence, reference, "", model_id, p_frame.tensors)
    assert info.value.reason == "missing_reference"


def test_a_model_the_tail_does_not_hold_is_refused_before_decoding(sides, tiny_entropy_bundle, tiny_bundle):
    heads, _ = sides
    heads.configure({"codec": "entropy", "bits": 3, "mode": "calibrated"})
    result = heads.pipelines[""](video_frames(1)[0])
    (tensor,) = result.tensors
    assert tensor.codec == CODEC_ENTROPY and tensor.entropy_model.startswith("sha256:")
    model_id = tiny_entropy_bundle.manifest.model_id
    without = TailPipeline(tiny_bundle, ["cpu"])  # the same model, but no entropy.json
    with_models = TailPipeline(tiny_entropy_bundle, ["cpu"])
    cases = [
        (without, tensor),
        (with_models, dataclasses.replace(tensor, entropy_model="sha256:" + "0" * 64)),
        (with_models, dataclasses.replace(tensor, entropy_model="")),
        (with_models, dataclasses.replace(tensor, bits=4, packed_size=512)),  # a model for 3 bits
        (with_models, dataclasses.replace(tensor, codec=CODEC_ZSTD)),  # zstd needs no model
    ]
    for tail, spoiled in cases:
        with pytest.raises(FeaturesRejected) as info:
            tail(model_id, [spoiled])
        assert info.value.reason == "entropy_model", str(info.value)
    assert (
        with_models(model_id, [tensor]).results
        == TailPipeline(tiny_entropy_bundle, ["cpu"])(
            model_id, heads.pipelines[""].encode_codes(heads.pipelines[""].features(video_frames(1)[0])[0])[0]
        ).results
    )


def test_the_head_refuses_codec_entropy_without_a_model(tiny_bundle, tiny_entropy_bundle):
    with pytest.raises(CodecError, match="no entropy model"):
        HeadPipeline(tiny_bundle, EncoderConfig(codec="entropy"), providers=["cpu"])
    with pytest.raises(CodecError, match=r"bits 1\.\.8"):
        HeadPipeline(tiny_entropy_bundle, EncoderConfig(codec="entropy", bits=16), providers=["cpu"])


def test_tables_are_fitted_on_the_heads_own_codes_and_its_settings_restored(tiny_bundle):
    from splitcomp_core.entropy import EntropyModels
    from splitcomp_core.entropy_fit import fit_head_tables

    head = HeadPipeline(tiny_bundle, EncoderConfig(bits=6, codec="lz4"), providers=["cpu"])
    features = [head.features(f)[0] for f in video_frames(6, seed=8)]
    tables = fit_head_tables(head, features, [EncoderConfig(bits=3, mode="calibrated"), EncoderConfig(bits=5)])
    assert [(t.tensor, t.bits, t.mode) for t in tables] == [("feat", 3, "calibrated"), ("feat", 5, "clip")]
    assert head.config == EncoderConfig(bits=6, codec="lz4")
    with pytest.raises(CodecError, match=r"1\.\.8 bits"):
        fit_head_tables(head, features, [EncoderConfig(bits=16)])
    models = EntropyModels(tables)
    coder = HeadPipeline(
        tiny_bundle, EncoderConfig(bits=3, mode="calibrated", codec="entropy"), ["cpu"], entropy_models=models
    )
    receiver = TailPipeline(tiny_bundle, ["cpu"], entropy_models=models)
    sent = coder(video_frames(7, seed=8)[-1])
    assert np.array_equal(
        receiver.decode(tiny_bundle.manifest.model_id, sent.tensors).codes["feat"], sent.codes["feat"]
    )

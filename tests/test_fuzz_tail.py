"""Fuzzing the tail at scale over DDS: ten thousand malformed SplitFeatures of every class, between valid ones.

The tail must stay up, answer every valid message exactly as TailPipeline does in this process, answer
no malformed one (never a non-finite score), count every malformed one under its reason and lose
none. The valid ones use every codec, the entropy codec included, and are key frames or P-frames
against the valid message before them; the malformed ones include P-frames without their reference,
with a wrong one or one that loops, entropy models the tail does not hold, and lying or truncated
entropy streams. Sends are paced by the subscription's depth (features_qos keeps 5): at most four malformed
messages and one valid one are in flight, and the next round starts once the valid one is answered,
so a busy machine slows the test down instead of overflowing the tail's queue.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter, deque
from collections.abc import Callable

import lz4.frame
import numpy as np
import pytest
import zstandard
from diagnostic_msgs.msg import DiagnosticArray
from ros_harness import NodeProcess, Probe, diagnostics_values

from splitcomp_core.codec import CODEC_ENTROPY, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, EncodedTensor
from splitcomp_core.cuts import TailCuts
from splitcomp_core.entropy import max_stream_bytes
from splitcomp_core.head import HeadPipeline
from splitcomp_core.keyframes import DEFAULT_REFERENCE_FRAMES
from splitcomp_core.quantization import EncoderConfig
from splitcomp_core.references import InterFrameTail
from splitcomp_core.sequence import sender_key
from splitcomp_core.tail import FeaturesRejected, TailPipeline
from splitcomp_msgs.msg import Classification, SplitFeatures
from splitcomp_ros.messages import tensor_to_msg
from splitcomp_ros.qos import features_qos

pytestmark = pytest.mark.slow  # 12,500 messages over DDS: `make test-fast` leaves it out

MALFORMED = 10_000
PER_ROUND = 4  # + 1 valid message = features_qos().depth: nothing can be overwritten while in flight
LONG_TEXT = "x" * 10_240
SENDER = "fuzz_camera"
replace = dataclasses.replace

Spoiler = Callable[[np.random.Generator], tuple]  # -> (tensors, model_id, reason[, reference rule])
Rule = Callable[[int, "frozenset[int] | set[int]"], int]
Rule = Callable[[int, "int | None"], int]


def zstd_with_content_size(payload: bytes, claimed: int) -> bytes:
    """A zstd frame of `payload` whose header claims `claimed` bytes (a lie when they differ).

    The frame header descriptor says where the content size field is and how wide (RFC 8878, 3.1.1.1).
    """
    frame = bytearray(zstandard.ZstdCompressor(level=1, write_content_size=True).compress(payload))
    descriptor = frame[4]
    single_segment = descriptor >> 5 & 1
    start = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3]
    width = {0: single_segment, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
    assert width >= 2, "payload too small for a patchable content size field"
    frame[start : start + width] = (claimed - 256 if width == 2 else claimed).to_bytes(width, "little")
    return bytes(frame)


@dataclasses.dataclass
class Valid:
    """One valid frame as a key frame (`tensors`), with what it takes to send it as a P-frame instead."""

    tensors: list[EncodedTensor]
    codes: dict | None  # its codes (None: raw floats, never a P-frame)
    config: EncoderConfig
    features: dict


class ValidMessages(list):
    """Every encoding the head can send (bits 1-8 in each range mode, raw 16/32, every codec) of a few frames."""

    def __init__(self, bundle) -> None:
        super().__init__()
        self.head = HeadPipeline(bundle, providers=["cpu"])
        rng = np.random.default_rng(1)
        features = [self.head.features(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))[0] for _ in range(2)]
        modes = ("clip", "calibrated", "per_channel")
        configs = [EncoderConfig(bits=b, mode=m, clip_max=6.0) for b in range(1, 9) for m in modes]
        for config in configs + [EncoderConfig(bits=b) for b in (16, 32)]:
            for codec in ("none", "zstd", "lz4", "entropy"):
                if codec == "entropy" and config.bits > 8:
                    continue
                coded = dataclasses.replace(config, codec=codec)
                self.head.configure(coded)
                for f in features:
                    self.append(Valid(*self.head.encode_codes(f), coded, f))

    def p_frame(self, valid: Valid, reference_codes: dict) -> list[EncodedTensor]:
        """The same frame coded against `reference_codes`: it must be answered exactly as its key frame."""
        self.head.configure(valid.config)
        return self.head.encode_codes(valid.features, reference_codes)[0]


def valid_messages(bundle) -> list[list[EncodedTensor]]:
    return [v.tensors for v in ValidMessages(bundle)]


def spoilers(base: EncodedTensor, coded: EncodedTensor, other_digest: str, model_id: str) -> dict[str, Spoiler]:
    """Each malformed class: a random variant of it, with the reason the tail must count it under.

    `base` is a valid 4-bit tensor of codec none, `coded` one of the entropy codec, `other_digest` an entropy
    model the tail holds for another bit width.
    """
    packed = base.packed_size
    elements = math.prod(base.shape)

    def wrong_model_id(rng):
        choice = rng.integers(3)
        bad = ["sha256:" + rng.bytes(32).hex(), LONG_TEXT, ""][choice]
        return [base], bad, "model_id"

    def tensor_count(rng):
        return [base] * int(rng.choice([0, 2, 3])), model_id, "tensor_count"

    def tensor_name(rng):
        name = [LONG_TEXT, "", "conv1/Relu:0", rng.bytes(8).hex()][rng.integers(4)]
        return [replace(base, name=name)], model_id, "tensor_name"

    def shape(rng):
        variants = [
            (1, 2, 3),
            tuple(int(d) + 1 for d in base.shape),
            (1, 4, 16, 0),
            (2**31, 4, 16, 16),
            tuple(int(d) for d in rng.integers(1, 64, rng.integers(1, 7))),
        ]
        dims = variants[rng.integers(len(variants))]
        return [replace(base, shape=dims if dims != base.shape else (3,))], model_id, "shape"

    def bits(rng):
        value = int(rng.choice([0, *range(9, 16), *range(17, 32), *range(33, 256)]))
        return [replace(base, bits=value)], model_id, "codec"

    def scale_offset(rng):
        variants = [
            (np.ones(3, np.float32), np.zeros(3, np.float32)),
            (np.ones(4, np.float32), np.zeros(1, np.float32)),
            (np.array([np.nan], np.float32), np.zeros(1, np.float32)),
            (np.array([np.inf], np.float32), np.zeros(1, np.float32)),
            (np.ones(1, np.float32), np.array([-np.inf], np.float32)),
            (np.array([1e37], np.float32), np.array([3e38], np.float32)),  # reaches beyond float32
            (np.empty(0, np.float32), np.empty(0, np.float32)),
        ]
        scale, offset = variants[rng.integers(len(variants))]
        return [replace(base, scale=scale, offset=offset)], model_id, "codec"

    def codec(rng):
        return [replace(base, codec=int(rng.integers(CODEC_ENTROPY + 1, 256)))], model_id, "codec"

    def packed_size(rng):
        value = int(rng.choice([0, packed - 1, packed + 1, packed * 2, 2**32 - 1]))
        return [replace(base, packed_size=value)], model_id, "codec"

    def data_length(rng):
        cut = int(rng.integers(1, packed))
        data = [base.data[:-cut], base.data + rng.bytes(cut), b""][rng.integers(3)]
        return [replace(base, data=data)], model_id, "codec"

    def bomb(rng):
        zeros = bytes(packed * int(rng.integers(2, 256)))
        variants = [
            (CODEC_ZSTD, zstandard.ZstdCompressor(level=1).compress(zeros)),  # claims more than packed_size
            (CODEC_ZSTD, zstd_with_content_size(zeros, packed)),  # claims packed_size, holds more
            (CODEC_ZSTD, zstandard.ZstdCompressor(level=1, write_content_size=False).compress(zeros)),
            (CODEC_LZ4, lz4.frame.compress(zeros)),
            (CODEC_LZ4, lz4.frame.compress(zeros, store_size=False)),
            (CODEC_ZSTD, zstandard.ZstdCompressor(level=1).compress(base.data)[:-3]),  # truncated frame
            (CODEC_LZ4, lz4.frame.compress(base.data)[:-5]),
        ]
        number, data = variants[rng.integers(len(variants))]
        return [replace(base, codec=number, data=data)], model_id, "codec"

    def random_bytes(rng):
        number = int(rng.choice([CODEC_ZSTD, CODEC_LZ4]))
        magic = {CODEC_ZSTD: b"\x28\xb5\x2f\xfd", CODEC_LZ4: b"\x04\x22\x4d\x18"}[number]
        data = (magic if rng.integers(2) else b"") + rng.bytes(int(rng.integers(1, 2 * packed)))
        return [replace(base, codec=number, data=data)], model_id, "codec"

    def non_finite(rng):
        kind = rng.integers(4)
        if kind == 3:  # 4-bit codes whose offset is finite but whose values overflow the tail
            big = np.array([3e38], np.float32)
            return [replace(base, scale=np.zeros(1, np.float32), offset=big)], model_id, "non_finite"
        raw_bits = int(rng.choice([16, 32]))
        if kind == 2:  # every value a finite 3e38: the tail's sums overflow
            values = np.full(elements, 3e38, np.float32)
        else:
            values = rng.standard_normal(elements).astype(np.float32)
            values[rng.integers(elements, size=int(rng.integers(1, 8)))] = [np.nan, np.inf][kind]
        with np.errstate(over="ignore"):
            data = values.astype("<f2" if raw_bits == 16 else "<f4").tobytes()
        empty = np.empty(0, np.float32)
        tensor = EncodedTensor(base.name, base.shape, raw_bits, empty, empty, CODEC_NONE, len(data), data)
        return [tensor], model_id, "non_finite"

    def entropy_model(rng):
        variants = [
            replace(coded, entropy_model="sha256:" + rng.bytes(32).hex()),
            replace(coded, entropy_model=""),
            replace(coded, entropy_model=LONG_TEXT),
            replace(coded, entropy_model=other_digest),  # held, but for other bits
            replace(base, entropy_model=coded.entropy_model),  # codec none needs no model
        ]
        return [variants[rng.integers(len(variants))]], model_id, "entropy_model"

    def entropy_stream(rng):
        data = coded.data
        at = int(rng.integers(4, len(data) - 4))
        variants = [
            replace(coded, data=data[: int(rng.integers(0, len(data)))]),  # truncated, down to nothing
            replace(coded, data=data[:-4] + rng.bytes(4)),  # another CRC
            replace(coded, data=data[:-4] + rng.bytes(4 * int(rng.integers(1, 8))) + data[-4:]),  # extra words
            replace(coded, data=data[:at] + bytes([data[at] ^ (1 << int(rng.integers(8)))]) + data[at + 1 :]),
            replace(coded, data=rng.bytes(len(data))),
            replace(coded, data=bytes(max_stream_bytes(elements) + 4)),  # longer than any stream of these codes
            replace(coded, packed_size=int(rng.choice([0, packed - 1, packed + 1, 2**32 - 1]))),  # a size that lies
        ]
        return [variants[rng.integers(len(variants))]], model_id, "codec"

    def p_frame_missing(rng):
        """A P-frame naming a frame the tail does not hold: never sent, malformed, or one next to a held one."""

        def rule(sequence: int, held: set[int]) -> int:
            newest = max(held, default=0)
            options = [sequence - 1, sequence - 2, 1, newest - 1, newest + 1]
            options = [s for s in options if 0 < s < sequence and s not in held]
            return int(rng.choice(options)) if options else sequence

        return [coded if rng.integers(2) else base], model_id, "missing_reference", rule

    def p_frame_loop(rng):
        """A P-frame naming itself or a later frame (two such frames would each wait for the other)."""
        ahead = int(rng.integers(0, 3))
        return (
            [coded if rng.integers(2) else base],
            model_id,
            "missing_reference",
            lambda sequence, held: sequence + ahead,
        )

    spoil = [
        entropy_model,
        entropy_stream,
        p_frame_missing,
        p_frame_loop,
        wrong_model_id,
        tensor_count,
        tensor_name,
        shape,
        bits,
        scale_offset,
        codec,
        packed_size,
        data_length,
        bomb,
        random_bytes,
        non_finite,
    ]
    return {f.__name__: f for f in spoil}


def message(tensors, model_id: str, sequence: int, reference: int = 0) -> SplitFeatures:
    msg = SplitFeatures()
    msg.reference_sequence = reference
    msg.header.frame_id = SENDER
    msg.header.stamp.sec = sequence
    msg.sequence = sequence
    msg.model_id = model_id
    msg.tensors = [tensor_to_msg(t) for t in tensors]
    return msg


class Tail:
    """tail_node with a probe that publishes features and collects classifications and diagnostics."""

    def __init__(self, bundle, tmp_path) -> None:
        self.node = NodeProcess(
            "splitcomp_tail_node", "tail_node", {"bundle": str(bundle.path), "providers": ["cpu"]}, tmp_path
        )
        self.probe = Probe("fuzz_probe")
        self.answers: dict[int, Classification] = {}
        self.duplicates = 0
        self.status: dict = {}
        self.probe.node.create_subscription(Classification, "splitcomp/classification", self._on_answer, 50)
        self.probe.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.publisher = self.probe.node.create_publisher(SplitFeatures, "splitcomp/features", features_qos())
        assert self.probe.wait_for_subscriber(self.publisher), self.node.log()
        self.sequences: Counter = Counter()

    def _on_answer(self, msg: Classification) -> None:
        self.duplicates += msg.sequence in self.answers
        self.answers[msg.sequence] = msg

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "splitcomp: /tail_node":
                self.status = diagnostics_values(status)

    def send(self, tensors, model_id: str, rule: Rule | None = None, held: frozenset[int] = frozenset()) -> int:
        """Publish one message with the next sequence number of its sender (frame_id, model_id); a P-frame
        names the reference `rule` gives for it (`held`: the frames the tail holds as references)."""
        self.sequences[model_id] += 1
        sequence = self.sequences[model_id]
        reference = rule(sequence, held) if rule is not None else 0
        self.publisher.publish(message(tensors, model_id, sequence, reference))
        return sequence

    def close(self) -> int:
        self.probe.close()
        return self.node.stop()


def fuzz_inputs(bundle):
    """The valid messages, their answers by TailPipeline, and the malformed classes built from them."""
    model_id = bundle.manifest.model_id
    valid = ValidMessages(bundle)
    reference = TailPipeline(bundle, ["cpu"], top_k=5)
    expected = [reference(model_id, v.tensors).results for v in valid]
    tensors = [v.tensors[0] for v in valid]
    base = next(t for t in tensors if t.bits == 4 and t.codec == CODEC_NONE and t.scale.size == 1)
    coded = next(t for t in tensors if t.bits == 4 and t.codec == CODEC_ENTROPY and t.scale.size == 1)
    other = next(t.entropy_model for t in tensors if t.codec == CODEC_ENTROPY and t.bits == 5)
    return valid, expected, spoilers(base, coded, other, model_id)


def test_ten_thousand_malformed_features_between_valid_ones(tiny_entropy_bundle, tmp_path):
    bundle = tiny_entropy_bundle
    model_id = bundle.manifest.model_id
    valid, expected, classes = fuzz_inputs(bundle)
    rng = np.random.default_rng(2024)
    tail = Tail(bundle, tmp_path)
    sent: Counter = Counter()
    sent_classes: Counter = Counter()
    valid_sent: dict[int, int] = {}  # sequence -> index into valid
    p_frames = 0
    held: tuple[int, dict] | None = None  # the newest valid frame, a reference for the next valid P-frame
    # The frames the tail may hold as references (it keeps its last DEFAULT_REFERENCE_FRAMES decoded frames, a
    # frame whose tail output is not finite among them): a superset, so a "missing" reference is really missing.
    decoded: deque[int] = deque(maxlen=2 * DEFAULT_REFERENCE_FRAMES)
    start = time.monotonic()
    try:
        names = list(classes)
        malformed = 0
        round_number = 0
        while malformed < MALFORMED:
            for _ in range(min(PER_ROUND, MALFORMED - malformed)):
                name = names[int(rng.integers(len(names)))]
                tensors, bad_id, reason, *rule = classes[name](rng)
                bad = tail.send(tensors, bad_id, *rule, held=frozenset(decoded))
                if reason == "non_finite":
                    decoded.append(bad)  # finite codes whose tail output is not: decoded, then refused
                if reason == "missing_reference":
                    held = None  # the head would hear it and send a key frame next
                sent[reason] += 1
                sent_classes[name] += 1
                malformed += 1
            index = round_number % len(valid)
            item = valid[index]
            if held is not None and item.codes is not None and rng.integers(2):
                reference, codes = held
                sequence = tail.send(valid.p_frame(item, codes), model_id, lambda s, h, r=reference: r)
                p_frames += 1
            else:
                sequence = tail.send(item.tensors, model_id)
            held = (sequence, item.codes) if item.codes is not None else None
            if held is not None:
                decoded.append(sequence)
            valid_sent[sequence] = index
            round_number += 1
            assert tail.probe.spin_until(lambda sequence=sequence: sequence in tail.answers, 20.0), (
                f"no answer to valid #{sequence} after {malformed} malformed:\n{tail.node.log()[-3000:]}"
            )
            assert tail.node.process.poll() is None, tail.node.log()[-3000:]
        elapsed = time.monotonic() - start

        def counted() -> bool:
            return tail.status.get("rejected") == str(MALFORMED) and tail.status.get("frames_out") == str(
                len(valid_sent)
            )

        assert tail.probe.spin_until(counted, 15.0), (
            {k: v for k, v in tail.status.items() if k.startswith(("rejected", "frames"))},
            (MALFORMED, len(valid_sent), dict(sent)),
        )
        status = tail.status
        print(
            f"\n{MALFORMED} malformed + {len(valid_sent)} valid ({p_frames} P-frames) over DDS in {elapsed:.1f} s; "
            f"classes {dict(sent_classes)}"
        )
    finally:
        code = tail.close()
    assert code == 0, tail.node.log()[-3000:]
    assert set(tail.answers) == set(valid_sent), "a malformed message was answered (or a valid one was not)"
    assert tail.duplicates == 0
    for sequence, answer in tail.answers.items():
        want = expected[valid_sent[sequence]]
        assert [r.class_id for r in answer.results] == [c for c, _, _ in want], sequence
        np.testing.assert_allclose([r.score for r in answer.results], [p for _, _, p in want], rtol=1e-6)
        assert all(np.isfinite(r.score) for r in answer.results)
    assert set(sent_classes) == set(classes), "every class was sent"
    for reason, count in sent.items():
        assert status.get(f"rejected.{reason}") == str(count), (reason, status)
    assert status["lost"] == "0", status
    log = tail.node.log()
    assert "rejected features" in log and max(map(len, log.splitlines())) < 1000, (
        "an echo of received text is unbounded"
    )


def test_sequence_gaps_are_lost_messages_and_a_restarted_head_is_not(tiny_entropy_bundle, tmp_path):
    bundle = tiny_entropy_bundle
    valid = valid_messages(bundle)[0]
    tail = Tail(bundle, tmp_path)
    answered = []
    try:
        for sequence in (1, 2, 3, 7, 8, 1, 2, 3):  # 4-6 never sent; then the head restarts at 1
            tail.publisher.publish(message(valid, bundle.manifest.model_id, sequence))
            count = len(answered) + 1
            assert tail.probe.spin_until(lambda n=count: len(tail.answers) + tail.duplicates >= n, 20.0), (
                tail.node.log()
            )
            answered.append(sequence)
        assert tail.probe.spin_until(lambda: tail.status.get("frames_out") == "8", 15.0), tail.status
        assert (tail.status["lost"], tail.status["sequence_restarts"]) == ("3", "1"), tail.status
        assert "lost 3 message(s) before #7" in tail.node.log()
    finally:
        assert tail.close() == 0, tail.node.log()


def test_every_spoiler_is_malformed_as_its_reason_says(tiny_entropy_bundle):
    """Each class's variants are malformed in the way its reason says, checked in this process, with the sender's
    reference held (a valid key frame just before each) so that a P-frame's reference is really wrong."""
    valid, _, classes = fuzz_inputs(tiny_entropy_bundle)
    model_id = tiny_entropy_bundle.manifest.model_id
    frames = InterFrameTail(TailCuts(tiny_entropy_bundle, providers=["cpu"]))
    key = next(v for v in valid if v.codes is not None)
    sender = sender_key("splitcomp/features", SENDER, model_id)
    rng = np.random.default_rng(7)
    sequence = 0
    for name, spoil in classes.items():
        for _ in range(50):
            sequence += 2
            frames(sender, sequence - 1, 0, "", model_id, key.tensors)
            tensors, bad_id, reason, *rule = spoil(rng)
            reference = rule[0](sequence, {sequence - 1}) if rule else 0
            with pytest.raises(FeaturesRejected) as info:
                frames(sender, sequence, reference, "", bad_id, tensors)
            assert info.value.reason == reason, (name, str(info.value))
    frames(sender, sequence + 1, 0, "", model_id, key.tensors)
    p_frame = valid.p_frame(key, key.codes)
    assert frames(sender, sequence + 2, sequence + 1, "", model_id, p_frame).results  # the valid P-frame is answered

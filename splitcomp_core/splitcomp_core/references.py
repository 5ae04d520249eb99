"""The tail's inter-frame references: the last `frames` decoded frames of each sender, a P-frame decoded only
against exactly the one it names.

A sender is whatever the node can tell apart (the topic a message came on, the camera's frame_id, the
bundle's stream): the node passes a key, this module keeps the references of at most `max_senders` senders
(the least recently heard forgotten first), `frames` per sender, so memory is bounded by
max_senders x frames x one frame's codes, and one sender's frames never push out another's. Every decoded
frame becomes a reference of its sender, answered or not: the tail acknowledges it as decoded, and the head
may code a later frame against it (splitcomp_core.keyframes). A P-frame that names a frame the tail does not
hold, or an earlier frame than its own sequence allows (a loop), is rejected as `missing_reference`; the
frames held stay, so other P-frames in flight still decode, and the head sends a key frame once it hears.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from splitcomp_core.codec import EncodedTensor
from splitcomp_core.cuts import TailCuts
from splitcomp_core.interframe import Reference
from splitcomp_core.keyframes import DEFAULT_REFERENCE_FRAMES, MAX_REFERENCE_FRAMES
from splitcomp_core.sequence import DEFAULT_MAX_SENDERS
from splitcomp_core.tail import Decoded, FeaturesRejected, TailResult


class InterFrameTail:
    """TailCuts behind per-sender references; a key frame adds to its own sender's only."""

    def __init__(
        self, tails: TailCuts, max_senders: int = DEFAULT_MAX_SENDERS, frames: int = DEFAULT_REFERENCE_FRAMES
    ) -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_REFERENCE_FRAMES:
            raise ValueError(f"reference_frames must be an integer 1..{MAX_REFERENCE_FRAMES}, got {frames!r}")
        self.tails = tails
        self.frames = frames
        self._references: collections.OrderedDict[bytes, collections.OrderedDict[int, Reference]] = (
            collections.OrderedDict()
        )
        self._max_senders = max_senders

    def __call__(
        self,
        sender: bytes,
        sequence: int,
        reference_sequence: int,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
    ) -> TailResult:
        """Decode and answer one frame (decoded, it is a reference whatever the answer)."""
        decoded = self.decode(sender, sequence, reference_sequence, cut_id, model_id, tensors)
        return self.tails.pipeline(cut_id).answer(decoded)

    def decode(
        self,
        sender: bytes,
        sequence: int,
        reference_sequence: int,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
    ) -> Decoded:
        """Check and decode one frame; once decoded it is one of its sender's references."""
        held = self._references.get(sender)
        reference = held.get(reference_sequence) if held is not None and reference_sequence else None
        if reference_sequence and reference_sequence >= sequence:
            raise FeaturesRejected(
                "missing_reference",
                f"#{sequence} names #{reference_sequence} as its reference: a P-frame refers to an earlier frame",
            )
        if reference_sequence and reference is None:
            raise FeaturesRejected(
                "missing_reference",
                f"a P-frame coded against #{reference_sequence}, but the tail holds {self._held(held)} from this "
                f"sender; waiting for its next key frame",
            )
        decoded = self.tails.decode(cut_id, model_id, tensors, reference_sequence, reference)
        if decoded.codes is not None:
            self._keep(sender, Reference(sequence, model_id, decoded.codes))
        return decoded

    def senders(self) -> int:
        """How many senders' references are held."""
        return len(self._references)

    @staticmethod
    def _held(held: collections.OrderedDict[int, Reference] | None) -> str:
        if not held:
            return "none"
        return f"{len(held)} frame(s), #{min(held)}..#{max(held)}"

    def _keep(self, sender: bytes, reference: Reference) -> None:
        held = self._references.pop(sender, None)
        if held is None:
            held = collections.OrderedDict()
        held.pop(reference.sequence, None)
        held[reference.sequence] = reference
        while len(held) > self.frames:
            held.popitem(last=False)
        self._references[sender] = held
        while len(self._references) > self._max_senders:
            self._references.popitem(last=False)

"""The tail's inter-frame references, one per sender: a P-frame decodes only against exactly the frame it names.

A sender is whatever the node can tell apart (the topic a message came on, the camera's frame_id, the
bundle's stream): the node passes a key, this module keeps at most `max_senders` references (the least
recently heard forgotten first). A frame answered (or, for a fleet tail, decoded) becomes its sender's reference. A P-frame
that names another frame, or an earlier frame than its own sequence allows (a loop), is rejected as
`missing_reference` and its sender's reference dropped: nothing more from that sender is decoded until
its next key frame, which the head sends once it misses the answers.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from splitcomp_core.codec import EncodedTensor
from splitcomp_core.cuts import TailCuts
from splitcomp_core.interframe import Reference
from splitcomp_core.sequence import DEFAULT_MAX_SENDERS
from splitcomp_core.tail import Decoded, FeaturesRejected, TailResult


class InterFrameTail:
    """TailCuts behind per-sender references; a key frame resets only its own sender."""

    def __init__(self, tails: TailCuts, max_senders: int = DEFAULT_MAX_SENDERS) -> None:
        self.tails = tails
        self._references: collections.OrderedDict[bytes, Reference] = collections.OrderedDict()
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
        """Decode and answer one frame; only an answered frame becomes its sender's reference."""
        decoded = self._decode(sender, sequence, reference_sequence, cut_id, model_id, tensors, keep=False)
        result = self.tails.pipeline(cut_id).answer(decoded)  # a refused answer keeps the reference held before
        self._remember(sender, sequence, model_id, result.codes)
        return result

    def decode(
        self,
        sender: bytes,
        sequence: int,
        reference_sequence: int,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
    ) -> Decoded:
        """Check and decode one frame; once decoded it is its sender's reference, answered or not.

        A fleet tail decodes every frame as it arrives and may skip a stale frame's inference: the head
        codes each P-frame against the frame it sent just before, so that frame must be held either way.
        """
        return self._decode(sender, sequence, reference_sequence, cut_id, model_id, tensors, keep=True)

    def _decode(
        self,
        sender: bytes,
        sequence: int,
        reference_sequence: int,
        cut_id: str,
        model_id: str,
        tensors: Sequence[EncodedTensor],
        keep: bool,
    ) -> Decoded:
        reference = self._references.get(sender) if reference_sequence else None
        try:
            if reference_sequence and reference_sequence >= sequence:
                raise FeaturesRejected(
                    "missing_reference",
                    f"#{sequence} names #{reference_sequence} as its reference: a P-frame refers to an earlier frame",
                )
            decoded = self.tails.decode(cut_id, model_id, tensors, reference_sequence, reference)
        except FeaturesRejected as exc:
            if exc.reason == "missing_reference":
                self._references.pop(sender, None)
            raise
        if keep:
            self._remember(sender, sequence, model_id, decoded.codes)
        return decoded

    def _remember(self, sender: bytes, sequence: int, model_id: str, codes) -> None:
        if codes is None:
            self._references.pop(sender, None)
        else:
            self._keep(sender, Reference(sequence, model_id, codes))

    def senders(self) -> int:
        """How many senders' references are held."""
        return len(self._references)

    def _keep(self, sender: bytes, reference: Reference) -> None:
        self._references.pop(sender, None)
        self._references[sender] = reference
        while len(self._references) > self._max_senders:
            self._references.popitem(last=False)

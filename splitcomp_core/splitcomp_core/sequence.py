"""Lost messages from sequence gaps: the head numbers its messages +1 each, so a gap is a message lost.

The tail cannot see which process sent a message (rclpy on Humble passes no message info to a
subscription callback), so a sender is named by what the message itself carries: the camera's
`header.frame_id` and the bundle's `model_id`. Two heads that share both on one topic look like one
sender whose sequence jumps back and forth; give each camera its own frame_id (or namespace).

A sequence that goes back (a restarted head starts at 1 again) or jumps further ahead than any
real loss could (`max_gap`) starts a new stream: nothing is counted, so a restart never reads as
millions of lost messages. A late message from before such a jump is a restart too.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib

DEFAULT_MAX_SENDERS = 64
# At the head's highest rate (1000 Hz) this is 100 s of messages: a longer outage is a new stream.
DEFAULT_MAX_GAP = 100_000


def sender_key(*parts: str) -> bytes:
    """A fixed-size key for a sender named by text from its messages (and the topic they came on)."""
    return hashlib.blake2b("\0".join(parts).encode("utf-8", "replace"), digest_size=16).digest()


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one message said about its sender's stream: messages lost before it, or a new stream."""

    lost: int = 0
    restarted: bool = False
    previous: int | None = None  # the sender's last sequence before this one, if it was known


class SequenceGaps:
    """Last sequence per sender; `observe` says how many messages went missing before this one.

    Senders are keyed by a digest of their text (hostile messages cannot make the keys large) and at
    most `max_senders` are remembered, the least recently heard forgotten first.
    """

    def __init__(self, max_senders: int = DEFAULT_MAX_SENDERS, max_gap: int = DEFAULT_MAX_GAP) -> None:
        self._last: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._max_senders = max_senders
        self._max_gap = max_gap
        self.lost = 0
        self.restarts = 0

    def observe(self, frame_id: str, model_id: str, sequence: int) -> Observed:
        key = sender_key(frame_id, model_id)
        previous = self._last.pop(key, None)
        self._last[key] = sequence
        while len(self._last) > self._max_senders:
            self._last.popitem(last=False)
        if previous is None:
            return Observed()
        gap = sequence - previous - 1
        if gap < 0 or gap > self._max_gap:
            self.restarts += 1
            return Observed(restarted=True, previous=previous)
        self.lost += gap
        return Observed(lost=gap, previous=previous)

"""Random packet loss on the test bed's links, in the kernel, each way, without netem or gact.

This kernel has neither, so loss is built from what it has: an HTB root qdisc with two classes. Class 1:1's
leaf is the tbf that shapes the link; class 1:2's leaf is `pfifo limit 0`, which drops every packet given to
it. A classic-BPF `cls_bpf` filter sends each packet to 1:2 when a kernel random number (`ld rand`) falls
below share x 2^32, else to 1:1. Changing the share replaces the filter; changing the rate changes the tbf.
The counters of the two leaves say how many packets passed and how many were dropped.
"""

from __future__ import annotations

import json
import math

from splitcomp_core.errors import SplitcompError

MAX_LOSS_PCT = 100.0
PASS_CLASS, DROP_CLASS = "1:1", "1:2"
PASS_LEAF, DROP_LEAF = "10:", "20:"
HTB_RATE = "10gbit"  # far above any bed rate: the tbf below it shapes


class LossError(SplitcompError):
    """A loss share that cannot be set."""


def checked_loss(value: object) -> float:
    """A packet loss in percent, 0 <= loss < 100; LossError otherwise (the text says what to give)."""
    try:
        pct = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LossError(f"--loss must be a packet loss in percent, 0 <= loss < 100, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(pct) or not 0.0 <= pct < MAX_LOSS_PCT:
        raise LossError(f"--loss must be a packet loss in percent, 0 <= loss < 100, got {value!r}")
    return pct


def parse_losses(text: str) -> list[float]:
    """`--loss 0,1,3,10`: each checked, in the order given."""
    items = [item.strip() for item in str(text).split(",")]
    if not all(items):
        raise LossError(f"--loss must be percentages joined by commas, e.g. 0,1,3,10; got {text!r}")
    return [checked_loss(item) for item in items]


def bytecode(loss_pct: float) -> str:
    """The cls_bpf program: a random 32-bit number below the threshold goes to the dropping class."""
    threshold = min(round(checked_loss(loss_pct) / 100.0 * 2**32), 2**32 - 1)
    to_pass, to_drop = (int(c.split(":")[0]) << 16 | int(c.split(":")[1]) for c in (PASS_CLASS, DROP_CLASS))
    return f"4,32 0 0 4294963256,53 0 1 {threshold},6 0 0 {to_pass},6 0 0 {to_drop}"


def build_commands(namespace: str, device: str, tbf: list[str], loss_pct: float) -> list[list[str]]:
    """tc commands that put the HTB tree (shaping leaf, dropping leaf, random filter) on one veth end."""
    tc = ["tc", "-n", namespace]
    return [
        [*tc, "qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "1"],
        [*tc, "class", "add", "dev", device, "parent", "1:", "classid", PASS_CLASS, "htb", "rate", HTB_RATE],
        [*tc, "class", "add", "dev", device, "parent", "1:", "classid", DROP_CLASS, "htb", "rate", HTB_RATE],
        [*tc, "qdisc", "add", "dev", device, "parent", PASS_CLASS, "handle", PASS_LEAF, "tbf", *tbf],
        [*tc, "qdisc", "add", "dev", device, "parent", DROP_CLASS, "handle", DROP_LEAF, "pfifo", "limit", "0"],
        filter_command(namespace, device, loss_pct, "add"),
    ]


def filter_command(namespace: str, device: str, loss_pct: float, verb: str = "replace") -> list[str]:
    return ["tc", "-n", namespace, "filter", verb, "dev", device, "parent", "1:", "prio", "1", "handle", "1", "bpf",
            "bytecode", bytecode(loss_pct)]  # fmt: skip


def rate_command(namespace: str, device: str, tbf: list[str]) -> list[str]:
    """Change the shaping leaf's rate in place."""
    return ["tc", "-n", namespace, "qdisc", "change", "dev", device, "parent", PASS_CLASS, "handle", PASS_LEAF, "tbf",
            *tbf]  # fmt: skip


def packet_counts(qdisc_json: str) -> tuple[int, int]:
    """(passed, dropped) packets of one veth end, from `tc -s -j qdisc show`: the shaping leaf's packets, and
    the dropping leaf's drops."""
    passed = dropped = 0
    for qdisc in json.loads(qdisc_json or "[]"):
        if qdisc.get("handle") == PASS_LEAF:
            passed = int(qdisc.get("packets", 0))
        elif qdisc.get("handle") == DROP_LEAF:
            dropped = int(qdisc.get("drops", 0))
    return passed, dropped

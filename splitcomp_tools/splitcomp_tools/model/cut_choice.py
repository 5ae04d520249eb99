"""Where a robot would split a model when nobody planned it: the rule the demo and the planner's baseline share."""

from __future__ import annotations

from splitcomp_core.errors import SplitcompError
from splitcomp_tools.model.analyze import Analysis, CutReport

MAX_HEAD_FLOPS_SHARE = 0.5


def choose_cut(analysis: Analysis, max_head_flops_share: float = MAX_HEAD_FLOPS_SHARE) -> CutReport:
    """The single-tensor cut with the fewest bytes whose head does at most half the model's work.

    The robot is the weaker machine, so the head may not carry most of the compute; within that,
    the smallest feature map is the least traffic. Among cuts of equal size the latest wins: the
    elementwise ops between them (a residual Add, then its ReLU) cost nothing, and a post-ReLU
    tensor has no negative tail to spend quantization levels on.
    """
    fitting = [
        c for c in analysis.cuts if len(c.tensors) == 1 and c.bytes_4bit and c.head_flops_share <= max_head_flops_share
    ]
    if not fitting:
        raise SplitcompError(
            f"{analysis.model}: no single-tensor cut leaves the head at most {max_head_flops_share:.0%} of the compute"
        )
    return min(fitting, key=lambda c: (c.bytes_4bit, -c.position))

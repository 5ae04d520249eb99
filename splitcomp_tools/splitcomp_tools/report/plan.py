"""plan's results for people: the table of candidates and predicted latencies, and a PNG of both."""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.figure import Figure

from splitcomp_core.link import PACKET_HEADER_BYTES, PACKET_PAYLOAD_BYTES
from splitcomp_tools.cli import format_table as table
from splitcomp_tools.model.agreement import describe_rule
from splitcomp_tools.model.candidates import EDGE_ONLY, ROBOT_ONLY
from splitcomp_tools.model.latency import key
from splitcomp_tools.model.plan import ALONE, Plan
from splitcomp_tools.report import agreement
from splitcomp_tools.report.calibrate import baseline_table


def format_table(plan: Plan) -> str:
    """One row per candidate; the predicted latency per bandwidth with the best marked by *."""
    bandwidths = [key(b) for b in plan.bandwidths]
    jpeg = next((c.jpeg_stats for c in plan.candidates if c.jpeg_stats is not None), None)
    columns = agreement.header(jpeg)
    header = ["cut", "tensor", "head FLOPs", "bits/method/codec", "bytes", *columns, "head ms", "tail ms"]
    deployed = plan.stage_times != ALONE
    header += ["head alone", "tail alone"] if deployed else []
    header += [f"@{b} Mbit/s" for b in bandwidths]
    rows = []
    for c in plan.candidates:
        tensor = {EDGE_ONLY: "(the model input)", ROBOT_ONLY: "(the scores)"}.get(c.cut_id, c.tensors[0])
        head_alone = c.head_total_alone_ms if deployed else c.head_total_ms
        tail_alone = c.tail_total_alone_ms if deployed else c.tail_total_ms
        alone = [f"{head_alone:.2f} ({c.head_ms:.2f})", f"{tail_alone:.2f} ({c.tail_ms:.2f})"]
        stages = [f"{c.head_total_ms:.2f}", f"{c.tail_total_ms:.2f}"] if deployed else alone
        rows.append(
            [
                c.cut_id + (" (old rule)" if c.cut_id == plan.heuristic else "") + (" FAILED" if c.failed else ""),
                tensor if len(tensor) <= 40 else "..." + tensor[-37:],
                f"{100 * c.head_flops_share:.1f} %",
                f"{c.bits}/{c.quantization}/{c.codec}",
                f"{c.bytes:,.0f}",
                *agreement.cells(c.stats),
                *stages,
                *(alone if deployed else []),
                *(f"{c.predicted_ms[b]:.1f}" + ("*" if plan.best[b] == c.cut_id else " ") for b in bandwidths),
            ]
        )
    same = plan.profiles["robot"] == plan.profiles["edge"]
    notes = [
        f"{plan.model}: {len(plan.candidates)} candidates, judged on {plan.frames} frames from {plan.images}; each "
        f"candidate's encoding meets the rule: {describe_rule(plan.agreement)}",
        agreement.legend(plan.confidence, jpeg),
        f"JPEG-95 of the full frame on the same frames: {', '.join(agreement.cells(jpeg))} ({', '.join(columns)})",
        f"head/tail ms: the whole stage, {plan.stage_times}"
        + ("; head/tail alone: the whole stage timed alone" if deployed else "")
        + " (ONNX Runtime alone in brackets)"
        + f"; robot times: {plan.profiles['robot']}; edge times: {plan.profiles['edge']}"
        + (" (one machine's times stand for both sides)" if same else ""),
        f"predicted ms = head + bytes x 8 / bandwidth + tail + {_overhead(plan)}"
        + (
            f"; bytes on the link: the payload + {plan.link.framing_bytes:g} per message + "
            f"{PACKET_HEADER_BYTES} per {PACKET_PAYLOAD_BYTES}-byte packet"
            if plan.link.framing_bytes
            else ""
        )
        + (
            f"; the link lets {plan.link.burst_bytes:g} bytes of a message through at once"
            if plan.link.burst_bytes
            else ""
        ),
        "",
        table(header, rows, left=(0, 1)),
        "",
        *(
            f"FAILED {c.cut_id}: {c.failed} (predicted from its times alone, never picked)"
            for c in plan.candidates
            if c.failed
        ),
        *_refined(plan),
        "best cut: " + ", ".join(f"{b} Mbit/s -> {plan.best[b]}" for b in bandwidths),
        "ranges:   " + ", ".join(f"{c} {_range(lo, hi)}" for c, lo, hi in plan.ranges),
    ]
    if plan.baselines:
        notes += ["", "the frames sent as they are, on the same judged frames:", baseline_table(plan.baselines)]
    return "\n".join(notes)


def _refined(plan: Plan) -> list[str]:
    """One line per rate that --refine measured: the measured medians and the pick against the predicted one."""
    lines = []
    for rate, r in (plan.refined or {}).items():
        if r["measured_ms"]:
            ms = ", ".join(f"{cut} {'failed' if v is None else f'{v:.1f}'}" for cut, v in r["measured_ms"].items())
            lines.append(
                f"refined at {rate} Mbit/s (within {r['margin_ms']:.2f} ms): measured {ms} ms -> {r['pick']}"
                + ("" if r["pick"] == r["predicted_pick"] else f" (predicted {r['predicted_pick']})")
            )
    return lines


def _overhead(plan: Plan) -> str:
    fit = plan.link.fit
    if fit is None:
        return f"{plan.link.overhead_ms:.2f} ms fixed transport overhead"
    return (
        f"transport overhead ({fit.intercept_ms:.2f} + {fit.per_kb_ms:.4f} x KB) ms, fitted on {fit.samples:g} "
        f"samples (RMS {fit.rms_ms:.2f} ms, max residual {fit.max_residual_ms:.2f} ms)"
    )


def _range(low: float, high: float | None) -> str:
    return f"from {low:.3g} Mbit/s" if high is None else f"{low:.3g} to {high:.3g} Mbit/s"


def plot_png(plan: Plan) -> bytes:
    """PNG: predicted latency against bandwidth (one line per cut), and bytes against head compute."""
    fig = Figure(figsize=(12, 5), layout="constrained")
    latency, cost = fig.subplots(1, 2)
    rates = np.geomspace(min(plan.bandwidths) / 2, max(plan.bandwidths) * 2, 200)
    for c in plan.candidates:
        assert c.head_total_ms is not None and c.tail_total_ms is not None and c.bytes is not None
        curve = plan.link.latency(c, math.inf) + plan.link.waiting_bytes(c) * 8e-3 / rates
        winner = c.cut_id in plan.best.values()
        latency.plot(rates, curve, "-" if winner else ":", lw=2 if winner else 1, label=c.cut_id)
        latency.plot(plan.bandwidths, [c.predicted_ms[key(b)] for b in plan.bandwidths], "o", ms=3, color="k")
        cost.scatter(100 * c.head_flops_share, c.bytes, s=30)
        cost.annotate(c.cut_id, (100 * c.head_flops_share, c.bytes), textcoords="offset points", xytext=(4, 4))
    for b in plan.bandwidths:
        latency.axvline(b, color="grey", lw=0.5)
    latency.set(xscale="log", yscale="log", xlabel="link rate (Mbit/s)", ylabel="predicted end-to-end latency (ms)")
    latency.set_title("predicted latency per cut (solid: best at some rate)")
    latency.legend(fontsize=7, ncol=2)
    latency.grid(True, which="both", alpha=0.3)
    cost.set(yscale="log", xlabel="share of the model's FLOPs in the head (%)", ylabel="bytes per frame on the wire")
    cost.set_title(f"bytes meeting the rule at {plan.agreement:g} against head compute")
    cost.grid(True, which="both", alpha=0.3)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    return png.getvalue()

"""Live: the studio started with --ros joins the graph and streams a running pipeline to /api/live.

image_source -> head_node -> tail_node run as real processes over DDS (PipelineRun, as the demo
starts them); the studio is its own process and must pass their classifications and diagnostics on
as server-sent events, and its page must draw them.
"""

import json
import time
import urllib.request

import pytest
from studio_browser import browser_missing, browser_page, studio_server

from splitcomp_tools.demo.models import DEMO_LABELS
from splitcomp_tools.run.pipeline_run import PipelineRun

pytestmark = pytest.mark.slow  # a pipeline of nodes over DDS: `make test-fast` leaves it out

TIMEOUT_S = 60.0


def read_events(url: str, until, timeout: float = TIMEOUT_S) -> list[tuple[str, dict]]:
    """Server-sent events from `url` until `until(events)` holds (or the stream or the time ends)."""
    events: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(url, timeout=timeout) as stream:
        kind = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: ") and kind:
                events.append((kind, json.loads(line[len("data: ") :])))
                if until(events) or time.monotonic() > deadline:
                    break
    return events


def test_live_streams_the_pipelines_results_and_health(demo_bundle, tmp_path):
    labels = set(json.loads(DEMO_LABELS.read_text()))
    with (
        PipelineRun(demo_bundle, tmp_path / "logs", rate_hz=10, watch_frames=False, head_params={"codec": "none"}),
        studio_server(tmp_path / "workspace", "--ros") as url,
    ):
        status = json.load(urllib.request.urlopen(url + "api/status", timeout=10))
        assert status["ros"] is True

        def measured(kind: str, data: dict) -> bool:  # the tail's health once it has timed frames
            return kind == "diagnostics" and data["name"] == "/tail_node" and "latency_ms.p50" in data["values"]

        def enough(events):
            return any(k == "classification" for k, _ in events) and any(measured(k, d) for k, d in events)

        events = read_events(url + "api/live?max_events=200", enough)
        shown = []
        if not browser_missing():
            with browser_page(tmp_path / "profile") as page:
                page.goto(url)
                page.wait_for_selector("#live-results tbody tr")
                page.wait_for_function("document.querySelector('#live-nodes').textContent.includes('/tail_node')")
                shown = page.eval_on_selector_all(
                    "#live-results tbody tr td:nth-child(2)", "(c) => c.map((x) => x.textContent)"
                )
    results = [d for k, d in events if k == "classification"]
    health = [d for k, d in events if measured(k, d)]
    assert results and health, events
    first = results[0]
    assert first["feature_bytes"] == 4096 and first["model_id"].startswith("sha256:")
    assert len(first["results"]) >= 1 and first["results"][0]["label"] in labels
    assert first["latency_ms"] > 0 and first["sequence"] >= 0
    assert {"output_fps", "latency_ms.p95", "bytes_per_frame.p50"} <= set(health[-1]["values"])
    assert float(health[-1]["values"]["bytes_per_frame.p50"]) == 4096
    if browser_missing():
        pytest.skip(f"the page's Live view was not checked: {browser_missing()}")
    assert shown and shown[0].split(" ")[0] in labels

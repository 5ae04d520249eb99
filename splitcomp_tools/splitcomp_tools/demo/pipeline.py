"""The demo's run: image_source -> head_node -> tail_node -> overlay as separate processes over real DDS,
the head set to the encoding calibration chose, the first results shown as `ros2 topic echo` shows them."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from splitcomp_ros.echo import message_to_yaml
from splitcomp_ros.images import image_to_array
from splitcomp_tools.draw.annotate import write_png
from splitcomp_tools.model.encodings import Result, head_mode
from splitcomp_tools.run.pipeline_run import PipelineRun


def head_params(choice: Result | None) -> dict[str, object]:
    """The head node's parameters for the chosen encoding (config/head.yaml would otherwise set 4 bits)."""
    if choice is None or choice.bits is None or choice.codec is None:
        return {}
    params: dict[str, object] = {"bits": choice.bits, "codec": choice.codec}
    if choice.method != "raw":
        params["quantization"] = head_mode(choice.method)
    return params


def run_pipeline(
    bundle: Path,
    source: str,
    log_dir: Path,
    rate: float,
    choice: Result | None,
    frames: int,
    show: int,
    timeout: float,
) -> tuple[PipelineRun, float]:
    """Run the nodes until `frames` results came back (or `timeout` seconds), printing the first `show`;
    then wait a little for an overlay frame. Returns the finished run and the seconds the results took."""

    def echo(msg) -> None:
        if len(run.seen.results) <= show:
            print(message_to_yaml(msg))

    run = PipelineRun(
        bundle, log_dir, rate, source=source, head_params=head_params(choice), on_result=echo, overlay=True
    )
    with run:
        start = time.monotonic()
        run.spin_until(lambda: len(run.seen.results) >= frames, timeout)
        wall = time.monotonic() - start
        run.spin_until(lambda: run.seen.overlay is not None, 5.0)
    return run, wall


def save_overlay(msg, path: Path) -> None:
    """The overlay node's latest annotated frame as a PNG, written atomically."""
    image = image_to_array(msg)
    if msg.encoding == "rgb8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    write_png(path, image)

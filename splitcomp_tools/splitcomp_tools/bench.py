"""bench: `bench codec` (the feature codec against the seed's encodings), `bench pipeline` (the nodes over DDS,
also over a shaped link), `bench restarts` (how soon a node killed and started again is back in the pipeline),
`bench planner` (a plan's candidates measured over the test bed), `bench fleet` (many robots, one edge:
separate tails, one batched tail, or a tail over Triton), `bench video` (bytes per frame on real clips,
intra and inter-frame, at the agreement the new rule asks) or `bench detection` (a detection tail's box
decoding and NMS per frame)."""

import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from splitcomp_tools.cli import EXIT_USAGE
from splitcomp_tools.demo.models import CENTERFACE, DEMO_MODELS
from splitcomp_tools.demo.prepare import DEFAULT_CACHE, prepare_bundle
from splitcomp_tools.run import (
    bench_codec,
    bench_detection,
    bench_fleet,
    bench_pipeline,
    bench_planner,
    bench_restarts,
    bench_video,
)
from splitcomp_tools.run.bench_models import BenchModels


def _prepare(name: str, out: Path, cache: Path) -> Path:
    """The demo model `name` split and calibrated as `demo` does, judged on 100 held-out frames (fewer where the
    demo judges fewer: centerface's 40), quietly."""
    model = DEMO_MODELS[name]
    frames = min(100, model.evaluation_frames)
    return prepare_bundle(model, out, cache, model.calibration_frames, frames, quiet=True).path


ALL = BenchModels(tuple(DEMO_MODELS), DEFAULT_CACHE, _prepare, lambda name: DEMO_MODELS[name].source)
# The classifiers: the restarts and fleet benchmarks listen for classifications.
DEMO = BenchModels(tuple(n for n in ALL.names if n != CENTERFACE.name), ALL.cache, ALL.prepare, ALL.held_out)
BENCHMARKS: dict[str, Callable[[Sequence[str]], int]] = {
    "codec": bench_codec.main,
    "pipeline": partial(bench_pipeline.main, models=ALL),
    "restarts": partial(bench_restarts.main, models=DEMO),
    "planner": bench_planner.main,
    "fleet": partial(bench_fleet.main, models=DEMO),
    "video": bench_video.main,
    "detection": bench_detection.main,
}
USAGE = f"usage: bench {{{','.join(BENCHMARKS)}}} [options]   (bench NAME --help for each)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        said = f"unknown benchmark {argv[0]!r}" if argv else "name a benchmark"
        print(f"error: {said}; one of {', '.join(BENCHMARKS)} (bench NAME --help for each)", file=sys.stderr)
        return EXIT_USAGE
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

"""bench: `bench codec` (the feature codec against the seed's encodings), `bench pipeline` (the nodes over DDS,
also over a shaped link), `bench restarts` (how soon a node killed and started again is back in the pipeline)
or `bench planner` (a plan's candidates measured over the test bed)."""

import sys
from collections.abc import Sequence

from splitcomp_tools.cli import EXIT_USAGE
from splitcomp_tools.run import bench_codec, bench_pipeline, bench_planner, bench_restarts

BENCHMARKS = {
    "codec": bench_codec.main,
    "pipeline": bench_pipeline.main,
    "restarts": bench_restarts.main,
    "planner": bench_planner.main,
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
    sys.exit(main())

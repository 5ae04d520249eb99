"""bench: `bench codec` (the feature codec against the seed's encodings), `bench pipeline` (the nodes over DDS,
also over a shaped link) or `bench planner` (a plan's candidates measured over the test bed)."""

import sys
from collections.abc import Sequence

from splitcomp_tools.run import bench_codec, bench_pipeline, bench_planner

BENCHMARKS = {"codec": bench_codec.main, "pipeline": bench_pipeline.main, "planner": bench_planner.main}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        print(
            f"usage: bench {{{','.join(BENCHMARKS)}}} [options]   (bench NAME --help for each)",
            file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())

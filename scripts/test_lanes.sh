#!/usr/bin/env bash
# make test: every test, in two lanes at once. The tests that start nodes over DDS (tests/, splitcomp_ros/test)
# mostly wait on processes and the network; the library and tool tests (splitcomp_core/test,
# splitcomp_tools/test) are CPU-bound and start no node. The second lane runs beside the first at a lower
# priority (nice), so it takes the cores the DDS tests leave idle and the DDS tests keep theirs.
# Arguments are pytest options for both lanes (make test PYTEST_ARGS="-x -q"); run a single file with
# python -m pytest. Exits with the first lane's failure, else the second's.
set -uo pipefail
cd "$(dirname "$0")/.."
NICENESS=${SPLITCOMP_TEST_NICE:-10}
log=$(mktemp "${TMPDIR:-/tmp}/splitcomp-test-lane.XXXXXX")
trap 'rm -f "$log"' EXIT
nice -n "$NICENESS" python -m pytest "$@" splitcomp_core/test splitcomp_tools/test >"$log" 2>&1 &
second=$!
trap 'kill "$second" 2>/dev/null; exit 130' INT TERM
python -m pytest "$@" tests splitcomp_ros/test
first=$?
wait "$second"
second_rc=$?
printf '\n== splitcomp_core/test splitcomp_tools/test (ran beside the tests above, at nice %s)\n' "$NICENESS"
cat "$log"
if ((first != 0)); then exit "$first"; fi
exit "$second_rc"

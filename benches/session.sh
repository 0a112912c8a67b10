#!/usr/bin/env bash
# One benchmark session: every bench in `benches/`, in three interleaved
# rounds (each bench once per round, the rounds one after another), so that
# a slow phase of a shared VM shows up as a spread across rounds instead of
# as one bench looking slow. Every peer runs in the same binary run as
# Machina's rows. Output: target/bench-session/round-<k>/<bench>.txt, and
# the CPU model in target/bench-session/cpu.txt.
#
# Run: bash benches/session.sh [bench...]       (default: all of them)
#   MACHINA_PYTHON=/path/to/python-with-aiomisc   for the aggregate peer
#   ROUNDS=3 (default)  CRITERION_ARGS="--warm-up-time 1 --measurement-time 2"
# The redis bench starts its own redis-server (needs it on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
args=${CRITERION_ARGS:---warm-up-time 1 --measurement-time 2}
benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
  benches=(limit breaker call execute spawn many_loops aggregate mock_runtime services pool net redis)
fi
out=${CARGO_TARGET_DIR:-target}/bench-session
mkdir -p "$out"
{
  grep -m1 "model name" /proc/cpuinfo || true
  nproc
  rustc --version
  date -u +%FT%TZ
  git rev-parse --short HEAD
} > "$out/cpu.txt"
cargo bench --no-run $(printf -- '--bench %s ' "${benches[@]}") >&2
for round in $(seq 1 "$rounds"); do
  mkdir -p "$out/round-$round"
  for bench in "${benches[@]}"; do
    echo "round $round: $bench" >&2
    # net runs its own interleaved rounds: one of them per session round.
    case $bench in
      net) bench_args="--rounds 1" ;;
      *) bench_args=$args ;;
    esac
    # shellcheck disable=SC2086
    cargo bench --bench "$bench" -- $bench_args > "$out/round-$round/$bench.txt" 2>&1 \
      || echo "bench $bench failed in round $round (see the file)" >&2
  done
done
echo "done: $out" >&2

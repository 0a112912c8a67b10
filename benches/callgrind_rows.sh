#!/usr/bin/env bash
# Instructions per operation of a bench's nanosecond rows, under callgrind:
# each row runs n times in the bench binary (MACHINA_CALLGRIND=<row>:<n>)
# inside `machina_callgrind_loop`, the only function counted
# (--toggle-collect), and (I(11000) - I(1000)) / 10000 is the count per
# operation (one indirect call of the loop included, the same for every
# row). Deterministic where wall-clock rows on a shared VM are not.
#
# Run: bash benches/callgrind_rows.sh <bench> <row>...   (needs valgrind)
#   bash benches/callgrind_rows.sh breaker machina_guard recloser failsafe
#   bash benches/callgrind_rows.sh limit machina_group_in_flight_only \
#     machina_group_in_flight_only_guard tokio_semaphore machina_group_real_clock \
#     machina_group_real_clock_guard machina_token_bucket machina_token_bucket_guard \
#     governor_check std_instant_now
set -euo pipefail
cd "$(dirname "$0")/.."
bench=$1
shift
cargo build --release --bench "$bench" >&2
bin=$(ls -t ${CARGO_TARGET_DIR:-target}/release/deps/"$bench"-* | grep -E "/$bench-[0-9a-f]+\$" | head -1)
instructions() {
  MACHINA_CALLGRIND="$1:$2" valgrind --tool=callgrind --child-silent-after-fork=yes --toggle-collect="*machina_callgrind_loop*" --callgrind-out-file=/dev/null "$bin" --bench 2>&1 \
    | awk '/Collected/ {print $4}'
}
for row in "$@"; do
  low=$(instructions "$row" 1000)
  high=$(instructions "$row" 11000)
  echo "$row: $(( (high - low) / 10000 )) instructions per operation"
done

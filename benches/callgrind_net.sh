#!/usr/bin/env bash
# Instructions per round trip of the net bench's one-thread servers, under
# callgrind: (I(N) - I(0)) / N for each server, where I(n) is the whole
# process (runtime, servers, client, n round trips after a first one that
# sets the connection up). Deterministic where wall-clock rows on a shared
# VM are not.
#
# Run: bash benches/callgrind_net.sh [N]   (N = 2000 by default; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
cargo build --release --bench net >&2
bin=$(ls -t target/release/deps/net-* | grep -E '/net-[0-9a-f]+$' | head -1)
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --count "$1" "$2" 2>&1 \
    | awk '/Collected/ {print $4}'
}
for kind in tcp-machina tcp-hand http-machina http-bare; do
  i0=$(instructions "$kind" 0)
  in=$(instructions "$kind" "$N")
  echo "$kind: $(( (in - i0) / N )) instructions per round trip (I(0)=$i0, I($N)=$in)"
done

"""aiomisc's `aggregate` on the workload of `benches/aggregate.rs`: 64
concurrent callers, each making 1 000 calls one after the other, through
one aggregated function (at most 64 arguments per batch, 1 ms leeway)
that doubles its arguments.

Prints one line: `aiomisc_aggregate calls_per_sec=<float> seconds=<float>`
for the best of `--rounds` rounds (default 3), so the Rust bench can put
it beside Machina's figure from the same run.

Needs aiomisc (`pip install aiomisc`); run by `cargo bench --bench
aggregate` when `python3 -c "import aiomisc"` works (or with the Python
named by `MACHINA_PYTHON`).
"""

import argparse
import asyncio
import time

from aiomisc import aggregate

CALLERS = 64
CALLS_PER_CALLER = 1_000


@aggregate(leeway_ms=1, max_count=CALLERS)
async def doubled(*args):
    return [a * 2 for a in args]


async def caller(c):
    for i in range(CALLS_PER_CALLER):
        v = await doubled(c * CALLS_PER_CALLER + i)
        assert v == 2 * (c * CALLS_PER_CALLER + i)


async def one_round():
    start = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(CALLERS)))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = min(asyncio.run(one_round()) for _ in range(args.rounds))
    calls = CALLERS * CALLS_PER_CALLER
    print(f"aiomisc_aggregate calls_per_sec={calls / best:.1f} seconds={best:.4f}")


if __name__ == "__main__":
    main()

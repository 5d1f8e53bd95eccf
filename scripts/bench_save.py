"""How fast the batch driver saves runs: serially vs on a pool of threads (what ``iter_batch`` does).

Reads the saved runs of a runs folder (e.g. a batch's), then saves them again under new keys into
a temporary run store, serially and on 2, 4 and 8 threads, interleaved over a few rounds so the
machine's drift hits all alike. Prints runs saved per second and the ratio to serial: the cap a
driver puts on a batch however many workers compute.

Usage: python scripts/bench_save.py RUNS_FOLDER [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explainer.store import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2,4,8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    source = RunStore(args.runs)
    exps = [source.load(row["key"]) for row in source.list()]
    if not exps:
        raise SystemExit(f"no saved runs in {args.runs}")
    first = exps[0]
    print(f"{len(exps)} runs ({first.n_regions} regions, {first.insertion_probs.shape[1]} classes) from {args.runs}")
    work = Path(tempfile.mkdtemp(prefix="lima-bench-save-"))
    counts = [int(t) for t in args.threads.split(",")]
    rates: dict[int, list[float]] = {t: [] for t in counts}
    try:
        for r in range(args.rounds):
            for threads in counts:
                store = RunStore(work / f"r{r}-t{threads}")
                keys = [f"bench{r:02d}{threads:02d}{i:04d}{'0' * 6}" for i in range(len(exps))]
                start = time.perf_counter()
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(store.save, exps, keys))
                rates[threads].append(len(exps) / (time.perf_counter() - start))
                shutil.rmtree(store.root)
        base = statistics.median(rates[counts[0]])
        report = {
            "runs": len(exps),
            "load_average": os.getloadavg(),
            "runs_per_s": {t: statistics.median(v) for t, v in rates.items()},
        }
        for t in counts:
            med = statistics.median(rates[t])
            print(f"{t} thread{'s' if t > 1 else ' '}: {med:6.1f} runs/s ({med / base:.2f}x)  rounds: {rates[t]}")
        print(f"load average: {os.getloadavg()}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Time to result as a user meets it: exact enumeration at the limit and the permutation interval. Prints a table.

Each case runs in a fresh Python process, so that its peak memory (maximum resident set size, imports
included) is its own; the time is the wall time of what the user calls (the design and its draw, or
``permutation_test(..., ci=True)``), imports and data generation excluded, with the CPU time of the
process beside it (on a loaded machine the wall time waits for a core; the CPU time much less). Every
case is run ``--repeat`` times and the median is shown (the machine is shared: medians, not best runs),
with the load average when the case started.

The reference row quotes R's cvcrand 0.1.1 measured on the same 2-core machine (one run each).

    python bench/bench_time_to_result.py                 # every case, 3 runs each
    python bench/bench_time_to_result.py --quick         # without the 155,117,520-scheme case
    python bench/bench_time_to_result.py --case enum24   # one run of one case, as JSON
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# name: (what, target seconds, target peak MB, ours before this work: the figure, then the code
# before it run by this script on the same machine, wall / CPU / peak MB, load average ~9)
CASES = {
    "enum24": ("24 clusters (12 treated), all 2,704,156 schemes: exact cutoff + choice", 0.05, 150,
               "0.095-0.25 s; 0.39-0.74/0.17-0.28 s, 152 MB"),
    "sample30": ("30 clusters, 1,000,000 sampled schemes: cutoff + choice", None, None, "0.40 s; 4.8/0.63 s, 211 MB"),
    "enum30": ("30 clusters (15 treated), all 155,117,520 schemes: exact cutoff + choice", 5.0, 1600,
               "9.6-14 s; 70/11.2 s, 2,478 MB"),
    "ci_binary": ("permutation test + CI, binary outcome, 1M schemes x 1M people", 5.0, None,
                  "14.0 s; 117/22.0 s, 298 MB"),
    "ci_count": ("permutation test + CI, count outcome, 1M schemes x 1M people", 5.0, None,
                 "13.4 s; 95/17.4 s, 298 MB"),
}
R_ANCHOR = ("cvcrand 0.1.1 (R): 24 clusters enumerated 13.2 s and 1.38 GB; "
            "1M sampled schemes of 30 clusters 16.9 s")


def _clusters(n: int):
    import numpy as np
    import pandas as pd

    x = np.random.default_rng(2026).normal(size=(n, 6))
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])


def run_case(name: str) -> dict:
    """One run of one case in this process: seconds, peak MB and what came out."""
    import resource

    import numpy as np

    from crt_widgets import ConstrainedDesign, permutation_test

    if name in ("enum24", "sample30", "enum30"):
        n = {"enum24": 24, "sample30": 30, "enum30": 30}[name]
        data = _clusters(n)
        kwargs = {"enum24": {"size": 10**9}, "sample30": {"size": 1_000_000}, "enum30": {"enumerate": True}}[name]
        t0, cpu0 = time.perf_counter(), time.process_time()
        design = ConstrainedDesign(data, list(data.columns), n // 2, seed=1, **kwargs)
        allocation = design.draw()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        assert int(allocation.arm.sum()) == n // 2
        detail = (f"{len(design.candidates):,} scored, {len(design.space_index):,} kept, "
                  f"cutoff {design.cutoff_score:.6f}, chosen score {allocation.score:.6f}")
    elif name in ("ci_binary", "ci_count"):
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from bench_permutation import N_CLUSTERS, make_trial

        family = "binomial" if name == "ci_binary" else "poisson"
        trial, schemes = make_trial(family, np.random.default_rng(2026))
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = permutation_test(trial, "y", "cluster", schemes, ["x1", "x2"], family=family,
                                  cluster_ids=np.arange(N_CLUSTERS), observed=0, ci=True)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        detail = (f"p={result.p_value:.6f}, estimate {result.estimate:.6f}, "
                  f"CI ({result.conf_int[0]:.6f}, {result.conf_int[1]:.6f})")
    else:
        raise SystemExit(f"unknown case {name!r}; one of {', '.join(CASES)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak, "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 155,117,520-scheme case")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", help="run one case once and print JSON")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    names = [n for n in CASES if not (args.quick and n == "enum30")]
    print(f"median of {args.repeat} runs per case, each in a fresh process (shared 2-core machine)")
    print(f"{'case':<10} {'seconds':>8} {'CPU s':>6} {'target':>7} {'peak MB':>8} {'target':>7} {'load':>5}  "
          f"{'before':<44} what; result")
    print(f"{'R':<10} {'':>8} {'':>6} {'':>7} {'':>8} {'':>7} {'':>5}  {'':<44} {R_ANCHOR}")
    for name in names:
        what, target_s, target_mb, before = CASES[name]
        runs, load = [], os.getloadavg()[0]
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"case {name} failed:\n{out.stderr}")
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        ok = (target_s is None or seconds <= target_s) and (target_mb is None or peak <= target_mb)
        print(f"{name:<10} {seconds:>8.3f} {cpu:>6.2f} {target_s or '-':>7} {peak:>8.0f} {target_mb or '-':>7} "
              f"{load:>5.1f}  {before:<44} "
              f"{'OK  ' if ok else 'MISS'} {what}; {runs[0]['detail']} "
              f"(runs: {', '.join(format(r['seconds'], '.3g') for r in runs)} s)")


if __name__ == "__main__":
    main()

"""Building the app's largest spaces, step by step, with and without the progress callback. Prints a table.

30 clusters in three regions of ten, stratified by region and enumerated: 16,003,008 schemes (what the app
builds in the background with a progress bar). Each run is a fresh process, so its peak memory is its own;
the steps are those the app's bar shows: generating the schemes, their balance scores (covariate sums,
scores, the cutoff and the kept schemes), the validity, each covariate's |SMD| over the kept schemes.
"with progress" passes ``on_progress`` and ``stop`` callables (as the app does) to show they cost nothing.

The "before" row is the code before this work (the stratified enumeration as a 0/1 matrix of every scheme,
unchunked sums), measured by this script on the same machine.

    python bench/bench_space_build.py              # 3 runs each way
    python bench/bench_space_build.py --case plain # one run, as JSON
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BEFORE = ("before: generate 5.0-12.7 s, scores 3.8-8.6 s, validity 0.3-1.5 s, SMD 17.9-18.3 s; peak 1,113 MB "
          "(two runs, load 5-7)")
R_ANCHOR = ("cvcrand 0.1.1 (R) has no exact stratified enumeration (stratify= weights a stratum 1000 in the score); "
            "it enumerated all 2,704,156 schemes of 24 clusters in 13.2 s and 1.38 GB (bench_time_to_result.py)")


def run_case(progress: bool) -> dict:
    import resource

    import numpy as np
    import pandas as pd

    from crt_widgets import ConstrainedDesign
    from crt_widgets.core.diagnostics.smd import smd_distribution

    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.normal(size=(30, 4)).round(3), columns=list("abcd"))
    data["region"] = np.repeat(["N", "S", "E"], 10)
    calls = [0]

    def on_progress(done: int, total: int) -> None:
        calls[0] += 1

    kwargs = {"on_progress": on_progress, "stop": lambda: False} if progress else {}
    design = ConstrainedDesign(data, ["a", "b", "c", "d", "region"], 15, categorical=["region"], stratify="region",
                               enumerate=True, seed=1)
    times = {}
    t0 = time.perf_counter()
    design.build(**kwargs)
    times["build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    design.validity
    times["validity"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    smd_distribution(design, **kwargs)
    times["smd"] = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**times, "peak_mb": peak, "n": len(design.candidates), "kept": len(design.space_index), "calls": calls[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["plain", "progress"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case == "progress")))
        return
    print(f"30 clusters, 3 strata of 10, all 16,003,008 balanced schemes; median of {args.repeat} fresh processes; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine)")
    print(f"{'':<16} {'build s':>8} {'validity s':>10} {'SMD s':>7} {'total s':>8} {'peak MB':>8}  callbacks")
    print(f"{'R':<16} {R_ANCHOR}")
    print(f"{'before':<16} {BEFORE}")
    results: dict[str, list[dict]] = {"plain": [], "progress": []}
    for _ in range(args.repeat):  # the two cases alternate, so a change of the machine's load hits both
        for case, runs in results.items():
            out = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for case, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("build", "validity", "smd", "peak_mb")}
        total = med["build"] + med["validity"] + med["smd"]
        print(f"{'with progress' if case == 'progress' else 'no callback':<16} {med['build']:>8.2f} "
              f"{med['validity']:>10.2f} {med['smd']:>7.2f} {total:>8.2f} {med['peak_mb']:>8.0f}  "
              f"{runs[0]['calls']} (kept {runs[0]['kept']:,} of {runs[0]['n']:,})")


if __name__ == "__main__":
    main()

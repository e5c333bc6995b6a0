"""Benchmark of the two-arm design engine. Prints a table.

Each case runs in a fresh subprocess so that its peak memory (max RSS) is its own; the time is
the wall time of the case inside that process (imports excluded), the best of ``--repeat`` runs.

    python bench/bench_design.py            # all cases
    python bench/bench_design.py --quick    # skip the 155,117,520-scheme case
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = {
    "dickinson": ("Dickinson, 12,870 schemes, end to end with validity", 0.050, None),
    "enum24": ("24 clusters (12 treated), 2,704,156 schemes enumerated + scored + cutoff", 1.0, 300),
    "sample30": ("30 clusters, 1,000,000 simulated schemes + scored + cutoff", 1.5, None),
    "enum30": ("30 clusters (15 treated), all 155,117,520 schemes: exact cutoff + choice", 30.0, 4096),
}


def _simulated(n: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2026)
    x = rng.normal(size=(n, 6))
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])


def run_case(name: str) -> dict:
    import resource

    import numpy as np

    from crt_widgets import ConstrainedDesign
    from crt_widgets.datasets import load_dickinson

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if name == "dickinson":
        d = load_dickinson()
        design = ConstrainedDesign(d, ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
                                   8, categorical=["location", "incomecat"], cluster_id="county", seed=1)
        allocation = design.draw()
        design.validity.table()
        allocation.summary
        detail = f"{len(design.space_index)} kept"
    elif name == "enum24":
        d = _simulated(24)
        design = ConstrainedDesign(d, list(d.columns), 12, seed=1, size=10**9)
        allocation = design.draw()
        detail = f"{len(design.scores):,} scored, {len(design.space_index):,} kept"
    elif name == "sample30":
        d = _simulated(30)
        design = ConstrainedDesign(d, list(d.columns), 15, seed=1, size=1_000_000)
        allocation = design.draw()
        detail = f"{len(design.scores):,} unique, {len(design.space_index):,} kept"
    elif name == "enum30":
        d = _simulated(30)
        design = ConstrainedDesign(d, list(d.columns), 15, seed=1, enumerate=True)
        allocation = design.draw()
        detail = f"{len(design.scores):,} scored, {len(design.space_index):,} kept, cutoff {design.cutoff_score:.4f}"
    else:
        raise SystemExit(f"unknown case {name}")
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert int(np.sum(allocation.arm)) == design.n_treat
    return {"seconds": elapsed, "peak_mb": peak, "base_mb": base_rss, "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    names = [n for n in CASES if not (args.quick and n == "enum30")]
    print(f"{'case':<10} {'seconds':>8} {'target':>7} {'peak MB':>8} {'(imports)':>9} {'MB target':>9}  detail")
    for name in names:
        label, target_s, target_mb = CASES[name]
        runs = []
        for _ in range(1 if name == "enum30" else args.repeat):
            out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["seconds"])
        peak = max(r["peak_mb"] for r in runs)
        ok = best["seconds"] <= target_s and (target_mb is None or peak <= target_mb)
        print(f"{name:<10} {best['seconds']:>8.3f} {target_s:>7.3g} {peak:>8.0f} {best['base_mb']:>9.0f} "
              f"{'-' if target_mb is None else target_mb:>9}  {'OK ' if ok else 'MISS'} {label}; {best['detail']}")


if __name__ == "__main__":
    main()

"""Benchmark of the multi-arm designs. Prints a table.

Each case runs in a fresh subprocess (its own peak memory); time is the wall time inside that
process with imports excluded, the best of ``--repeat`` runs.

    python bench/bench_multiarm.py              # both cases
    python bench/bench_multiarm.py --repeat 3
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

EDLEAD_SIZES = [12, 11, 9, 8, 7, 6, 6, 5, 4, 4, 3, 2, 2, 1]
CASES = {
    "stratified": ("1,000,000 balanced stratified allocations, ED-LEAD shape (80 units, 14 strata, 8 arms)", 10.0),
    "edlead": ("ED-LEAD end to end: 1,000,000 candidates, scores, best 1%, choice, validity", 30.0),
    "sequential": ("1,000,000 allocations with the sequential sampler of the ED-LEAD allocation (Greene 2017; dead ends redrawn)", None),
}


def run_case(name: str) -> dict:
    import resource

    import numpy as np

    from crt_widgets.core.randomization.multiarm import MultiArmDesign
    from crt_widgets.core.randomization.balanced_sampler import _generate, stratified_arms
    from crt_widgets.datasets import simulate_edlead

    strata = np.repeat(np.arange(len(EDLEAD_SIZES)), EDLEAD_SIZES)
    detail = ""
    t0 = time.perf_counter()
    if name == "stratified":
        arms = stratified_arms(strata, 8, 1_000_000, seed=2026)
        ok = bool((np.stack([(arms == a).sum(axis=1) for a in range(8)], axis=1) == 10).all())
        detail = f"all arm sizes 10: {ok}"
    elif name == "sequential":
        arms, redraws = _generate(strata, 8, 1_000_000, np.random.default_rng(2026), "sequential")
        detail = f"dead ends redrawn: {redraws:,} ({redraws / (1_000_000 + redraws):.2%} of attempts)"
    else:
        eds = simulate_edlead(seed=2026)
        design = MultiArmDesign(eds, ["volume", "location"], factors=["a", "b", "c"], categorical=["location"],
                                strata="health_system", cluster_id="ed", size=1_000_000, cutoff=0.01, seed=2026)
        allocation = design.draw()
        v = design.validity
        detail = (f"space {len(design.space_index):,}, score {allocation.score:.4f} <= cutoff "
                  f"{design.cutoff_score:.4f}, max |same-arm - unconstrained| {v.max_abs_difference:.3f}")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rss_mb": rss_mb, "detail": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--case", choices=list(CASES))
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case and args.json:
        print(json.dumps(run_case(args.case)))
        return
    rows = []
    for name, (label, target) in CASES.items():
        if args.case and name != args.case:
            continue
        results = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, __file__, "--case", name, "--json"], capture_output=True,
                                 text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = min(results, key=lambda r: r["seconds"])
        rows.append((label, best["seconds"], target, best["rss_mb"], best["detail"]))
    print(f"{'case':<92} {'time (s)':>9} {'target':>7} {'peak MB':>8}  detail")
    for label, seconds, target, rss, detail in rows:
        tgt = f"< {target:g}" if target else "-"
        print(f"{label:<92} {seconds:>9.2f} {tgt:>7} {rss:>8.0f}  {detail}")


if __name__ == "__main__":
    main()

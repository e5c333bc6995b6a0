"""Benchmark of the analytic power (vectorised over scenarios). Prints a table.

- power on a 100 x 100 grid (ICC x clusters per arm; noncentral t), and the normal approximation;
- solving over 100 x 100 scenarios (ICC x cluster size, or ICC x clusters per arm) for the clusters per arm,
  the cluster size and the detectable effect;
- a binary outcome on the risk-ratio scale solved for the clusters per arm over 10,000 scenarios;
- a power curve with its ICC band (27 points x 2 lines), the dashboard's call.

    python bench/bench_power.py
"""
from __future__ import annotations

import sys
import time

import numpy as np


def _best(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    from crt_widgets.core.power.analytic import crt_power, power_curve

    icc = np.linspace(0.001, 0.2, 100)[:, None]
    clusters = np.arange(3, 103)[None, :]
    sizes = np.arange(5, 105)[None, :]
    cases = [
        ("power, 10,000 scenarios (t)", lambda: crt_power(0.3, icc=icc, cluster_size=20, clusters_per_arm=clusters)),
        ("power, 10,000 scenarios (z)", lambda: crt_power(0.3, icc=icc, cluster_size=20, clusters_per_arm=clusters,
                                                           test="z")),
        ("solve clusters per arm, 10,000 scenarios", lambda: crt_power(0.3, icc=icc, cluster_size=sizes, power=0.8)),
        ("solve cluster size, 10,000 scenarios", lambda: crt_power(0.3, icc=icc, clusters_per_arm=clusters, power=0.8,
                                                                    max_clusters=10_000)),
        ("solve detectable effect, 10,000 scenarios", lambda: crt_power(icc=icc, cluster_size=sizes, clusters_per_arm=10,
                                                                         power=0.8)),
        ("binary risk ratio 0.7, solve clusters, 10,000 scenarios",
         lambda: crt_power(0.7, outcome="binary", scale="ratio", p_control=0.2, icc=icc / 4, cluster_size=sizes,
                           power=0.8)),
        ("power curve with ICC band (27 x 2 points)",
         lambda: power_curve(0.3, against="clusters_per_arm", values=range(4, 31), icc=0.05, cluster_size=[20, 50],
                             band=(0.02, 0.1))),
    ]
    rows = []
    for name, fn in cases:
        seconds, out = _best(fn)
        if hasattr(out, "power"):
            power = np.asarray(out.power, dtype=float)
            note = f"{np.isfinite(power).sum():,} answers, power {np.nanmin(power):.3f}-{np.nanmax(power):.3f}"
        else:
            note = f"{len(out)} rows"
        rows.append((name, seconds, note))
    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'seconds':>8}  result")
    print("-" * (width + 50))
    for name, seconds, note in rows:
        print(f"{name.ljust(width)}  {seconds:8.3f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

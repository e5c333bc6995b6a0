"""Benchmark of the app's Multi-period section: how long each kind of input change takes in the kernel (the
work a keystroke or a slider move triggers). Prints a table.

- building the section on first opening (Dickinson's 16 counties: 4 steps of 4; 50,000 of the 63,063,000 orders
  sampled and scored, the histogram, |SMD| and time-balance tables);
- a power input (the ICC): the power, the clusters needed and both curves (2 x 7 stepped-wedge designs);
- a design input (the steps): the grid, the power and curves, and new candidate orders;
- a cutoff move: the listed orders re-scored;
- a draw: the seed named, confirmed, drawn and logged (without --records: no files written).

    python bench/bench_multiperiod_panel.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def timed(action, repeats: int) -> tuple[float, float]:
    """Median and best wall time in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times)), float(min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from crt_widgets.datasets import load_dickinson
    from crt_widgets.widgets.multiperiod_panel import MultiPeriodSection
    from crt_widgets.widgets.state import DesignState

    clusters = DesignState()
    clusters.load(load_dickinson(), "Dickinson counties", cluster_id="county",
                  covariates=["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
                  categorical=["location", "incomecat"])
    sections = []
    rows = [("open the section (build)", *timed(lambda: sections.append(MultiPeriodSection(clusters)), args.repeats))]
    section = sections[-1]
    iccs = iter(np.linspace(0.01, 0.2, 1000))
    rows.append(("ICC changed (power, needed, curves)",
                 *timed(lambda: setattr(section.power.icc, "value", float(next(iccs))), args.repeats)))
    steps = iter([2, 4] * 100)
    rows.append(("steps changed (grid, power, new orders)",
                 *timed(lambda: setattr(section.design.steps, "value", next(steps)), args.repeats)))
    cutoffs = iter([0.05, 0.1] * 100)
    rows.append(("cutoff moved (re-score)",
                 *timed(lambda: setattr(section.ordering.cutoff, "value", next(cutoffs)), args.repeats)))
    seeds = iter(range(1, 1000))
    rows.append(("draw (seed named, confirmed, logged)",
                 *timed(lambda: section.order.draw(next(seeds)), args.repeats)))
    print(f"{'kernel work of one change':<42} {'median ms':>10} {'best ms':>10}")
    for name, median, best in rows:
        print(f"{name:<42} {median:>10.0f} {best:>10.0f}")


if __name__ == "__main__":
    main()

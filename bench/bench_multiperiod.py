"""Benchmark of multi-period (stepped-wedge) power: the GLS engine against swCRTdesign's swPwr. Prints a table.

- one 10-wave x 6-cluster stepped wedge (60 clusters, 11 periods; ICC 0.05, CAC 0.8, 20 per cluster-period):
  R's swPwr (the reference row: measured with swCRTdesign 4.0 under R 4.2; ``--r`` measures it again), our
  ``compat.swcrtdesign.swPwr`` and the native ``multiperiod_power``;
- grids of 1,000 scenarios on that design in one vectorised call: ICC x CAC x effect x cluster size
  (10 x 5 x 5 x 4; the effect does not change the variance, so 200 variances), 1,000 distinct variances
  (ICC x CAC x size, 10 x 10 x 10), and 1,000 under exponential decay (ICC x decay x size), which takes the
  general batched inverse instead of the low-rank (Woodbury) path.

Then the randomization of the order and the analysis (a second table):

- ``SteppedWedgeDesign``: listing every assignment of 12 clusters to 4 sequences (369,600) and of 10 clusters to
  5 sequences (113,400), scoring them, cutting at the 10% quantile and drawing; sampling 100,000 of the
  63,063,000 assignments of 16 clusters;
- ``stepped_wedge_permutation_test``: the test over every assignment of 8 clusters (2,520) and of 12 clusters
  (369,600), and over the 36,960-assignment constrained space of 12 clusters, with and without the inverted
  interval (each interval limit refits the variance components a few times).

    python bench/bench_multiperiod.py [--r] [--r-lib /tmp/rlib] [--no-power] [--no-order]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

# R 4.2.2, swCRTdesign 4.0, 50 calls of swPwr(swDsn(rep(6, 10)), "gaussian", n = 20, mu0 = 0, mu1 = 0.1,
# sigma = 1, icc = 0.05, cac = 0.8) on the 2-core machine this project is built on (loaded; see --r)
R_SWPWR_10X6_MS = 104.7

R_SCRIPT = """
.libPaths(c("{lib}", .libPaths())); suppressMessages(library(swCRTdesign))
d <- swDsn(rep(6, 10))
f <- function() swPwr(d, "gaussian", n = 20, mu0 = 0, mu1 = 0.1, sigma = 1, icc = 0.05, cac = 0.8, silent = TRUE)
p <- f(); t <- system.time(for (i in 1:50) f())[["elapsed"]] / 50
cat(sprintf("%.6f %.10f\\n", 1000 * t, p))
"""


def _per_call(fn, calls: int, repeat: int = 5) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def _r_row(lib: str) -> tuple[str, float, str] | None:
    if shutil.which("Rscript") is None:
        print("Rscript not found: the R row is the recorded figure", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "time_swpwr.R"
        script.write_text(R_SCRIPT.format(lib=lib))
        out = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"R failed: {out.stderr.strip()[:300]}", file=sys.stderr)
        return None
    ms, power = out.stdout.split()
    return "R swPwr (swCRTdesign 4.0), measured now", float(ms) / 1000, f"power {float(power):.6f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r", action="store_true", help="measure R's swPwr now (needs Rscript and swCRTdesign)")
    parser.add_argument("--r-lib", default="/tmp/rlib", help="R library holding swCRTdesign")
    parser.add_argument("--no-power", action="store_true", help="skip the power table")
    parser.add_argument("--no-order", action="store_true", help="skip the randomization and permutation-test table")
    args = parser.parse_args(argv)
    if not args.no_power:
        power_table(args)
    if not args.no_order:
        order_table()
    return 0


def _print(title: str, rows: list[tuple[str, float, str]]) -> None:
    width = max(len(r[0]) for r in rows + [(title, 0, "")])
    print(f"{title:{width}}  {'time':>10}  result")
    for label, seconds, note in rows:
        shown = f"{seconds * 1e3:8.2f} ms" if seconds < 1 else f"{seconds:8.2f} s "
        print(f"{label:{width}}  {shown:>10}  {note}")


def order_table() -> None:
    """Randomizing the order (enumeration or sampling, scores, cut, draw) and the permutation test."""
    import crt_widgets as crt
    from crt_widgets.core.permutation.stepped_wedge import stepped_wedge_permutation_test
    from crt_widgets.datasets import simulate_stepped_wedge_clusters, simulate_stepped_wedge_outcomes

    rows = []
    for n, steps, kwargs in [(12, 4, dict(size=400_000)), (10, 5, dict(size=200_000)), (16, 4, dict(size=100_000))]:
        clusters = simulate_stepped_wedge_clusters(n, seed=1)

        def build(clusters=clusters, steps=steps, kwargs=kwargs):
            design = crt.SteppedWedgeDesign(clusters, ["size", "baseline", "location"], steps, cluster_id="cluster",
                                            categorical=["location"], seed=2, **kwargs)
            design.draw()
            return design

        design = build()
        seconds = _per_call(build, 1, repeat=3)
        how = "all listed" if design.enumerated else f"{len(design.candidates):,} sampled"
        rows.append((f"SteppedWedgeDesign: {n} clusters on {steps} sequences ({design.n_possible:,} orders)", seconds,
                     f"{how}; {len(design.space):,} kept at the 10% cutoff"))
    for n, steps, source, ci in [(8, 4, "simple", False), (8, 4, "simple", True), (12, 4, "simple", False),
                                 (12, 4, "constrained", False), (12, 4, "constrained", True)]:
        clusters = simulate_stepped_wedge_clusters(n, seed=3)
        design = crt.SteppedWedgeDesign(clusters, ["size", "baseline"], steps, cluster_id="cluster",
                                        size=400_000, seed=4)
        allocation = design.draw()
        data = simulate_stepped_wedge_outcomes(clusters, allocation.treatment_matrix(), effect=0.5, icc=0.1, cac=0.8,
                                               seed=5)
        observed = dict(zip(allocation.allocation.cluster, allocation.allocation.sequence))
        kwargs = (dict(space="simple", design=design.multiperiod, observed=observed, simple_size=400_000)
                  if source == "simple" else dict(space=allocation))
        run = lambda kwargs=kwargs, ci=ci: stepped_wedge_permutation_test(data, "y", "cluster", "period", ci=ci,  # noqa: E731
                                                                          **kwargs)
        result = run()
        seconds = _per_call(run, 1, repeat=3)
        interval = f"; CI {result.conf_int[0]:.3f} to {result.conf_int[1]:.3f}" if ci else ""
        rows.append((f"permutation test, {source} space of {n} clusters{' + CI' if ci else ''} "
                     f"({result.n_schemes:,} orders, {result.n_individuals:,} individuals)", seconds,
                     f"p = {result.p_value:.4f}{interval}"))
    _print("Randomizing the order of a stepped wedge, and its permutation test", rows)


def power_table(args) -> None:

    from crt_widgets.compat.swcrtdesign import swDsn, swPwr
    from crt_widgets.core.multiperiod.designs import stepped_wedge
    from crt_widgets.core.multiperiod.power import multiperiod_power, multiperiod_power_grid

    rows = [("R swPwr (swCRTdesign 4.0), recorded: the reference", R_SWPWR_10X6_MS / 1000, "power 0.878496")]
    if args.r and (measured := _r_row(args.r_lib)) is not None:
        rows.append(measured)
    reference = rows[-1][1]

    design_r = swDsn([6] * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compat = swPwr(design_r, "gaussian", n=20, mu0=0, mu1=0.1, sigma=1, icc=0.05, cac=0.8)
        t_compat = _per_call(lambda: swPwr(design_r, "gaussian", n=20, mu0=0, mu1=0.1, sigma=1, icc=0.05, cac=0.8),
                             200)
    rows.append(("compat swPwr, same call", t_compat, f"power {compat:.6f}; x{reference / t_compat:.0f} faster"))
    sw = stepped_wedge(10, 6)
    # swPwr's sigma is the residual SD: our total SD is sigma / sqrt(1 - icc)
    native = multiperiod_power(sw, 0.1, icc=0.05, cac=0.8, cluster_size=20, sd=1 / np.sqrt(0.95))
    t_native = _per_call(lambda: multiperiod_power(sw, 0.1, icc=0.05, cac=0.8, cluster_size=20,
                                                   sd=1 / np.sqrt(0.95)), 200)
    rows.append(("native multiperiod_power, same design", t_native,
                 f"power {native.power:.6f}; x{reference / t_native:.0f} faster"))

    grids = [
        ("grid ICC x CAC x effect x size (10x5x5x4)", dict(effect=np.linspace(0.05, 0.3, 5),
                                                         icc=np.linspace(0.01, 0.1, 10), cac=np.linspace(0.5, 1, 5),
                                                         cluster_size=[10, 20, 40, 80])),
        ("grid ICC x CAC x size, 1,000 variances", dict(effect=0.1, icc=np.linspace(0.01, 0.1, 10),
                                                       cac=np.linspace(0.1, 1, 10),
                                                       cluster_size=np.arange(10, 110, 10))),
        ("grid ICC x decay x size, 1,000 variances", dict(effect=0.1, icc=np.linspace(0.01, 0.1, 10),
                                                         decay=np.linspace(0.1, 1, 10),
                                                         cluster_size=np.arange(10, 110, 10))),
    ]
    for label, axes in grids:
        frame = multiperiod_power_grid(sw, **axes)
        t_grid = _per_call(lambda axes=axes: multiperiod_power_grid(sw, **axes), 1, repeat=5)
        rows.append((f"{label}: {len(frame):,} scenarios, one call", t_grid,
                     (f"power {frame.power.min():.3f} to {frame.power.max():.3f}; R: 1,000 calls ~ "
                      f"{1000 * reference:.0f} s")))

    _print("10-wave x 6-cluster stepped wedge (60 clusters, 11 periods)", rows)
    print()


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of the nested mixed model and the power simulations. Prints a table.

- the chapter's nested model (call_CSAT ~ reason + age, random intercepts for centre and rep
  within centre) on 695,205 simulated calls: the fast engine (whole ``mixed_model`` call, design
  matrix included; best of 3; with Satterthwaite's df, the default, with ``ddf="z"`` and with
  Kenward-Roger, and the df algebra alone with its peak memory) against statsmodels' MixedLM (the chapter's own call, run once,
  about 100 s here; ``--quick`` skips it) and, with ``--lme4``, R's lme4 (if Rscript is installed);
- a 1,000-trial design-stage power simulation (5 allocation methods: simple, stratified, pair
  matched, constrained at cutoffs 0.3 and 0.1; adjusted mixed-model analysis);
- the chapter's power simulation from the 695,205-call history (12 months x 32 within-pair
  assignments x 3 effect sizes = 1,152 trials, 100 calls per rep, Wald decision).

    python bench/bench_mixed.py [--quick] [--lme4] [--jobs 2]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORMULA = "call_CSAT ~ reason + age"


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the ~100 s statsmodels fit")
    parser.add_argument("--lme4", action="store_true", help="also time R's lme4 (needs Rscript and lme4)")
    parser.add_argument("--jobs", type=int, default=1, help="joblib workers for the simulations")
    args = parser.parse_args(argv)

    from crt_widgets.core.models.mixed import mixed_model
    from crt_widgets.core.power.chapter import chapter_power_simulation
    from crt_widgets.core.power.design_simulation import design_power_simulation
    from crt_widgets.datasets import simulate_callcenter

    rows = []
    calls = simulate_callcenter(seed=1)
    t_fast, fast = _best(lambda: mixed_model(FORMULA, calls, groups=["center_ID", "rep_ID"]), 3)
    vc = fast.variance_components
    rows.append(("fast engine: nested REML, 695,205 calls (Satterthwaite df)", t_fast,
                 f"centre var {vc['center_ID']:.6f}, rep var {vc['rep_ID']:.6f}, llf {fast.llf:.4f}"))
    t_z, _ = _best(lambda: mixed_model(FORMULA, calls, groups=["center_ID", "rep_ID"], ddf="z"), 3)
    rows.append(("fast engine, ddf='z' (no df algebra)", t_z, ""))
    t_kr, kr = _best(lambda: mixed_model(FORMULA, calls, groups=["center_ID", "rep_ID"], ddf="kenward-roger"), 3)
    rows.append(("fast engine, ddf='kenward-roger'", t_kr,
                 ", ".join(f"{k} df {v:.2f}" for k, v in kr.df.items())))
    rows.append(_ddf_row(calls, fast))
    if not args.quick:
        import statsmodels.formula.api as smf

        t0 = time.perf_counter()
        sm = smf.mixedlm(FORMULA, data=calls, groups=calls["center_ID"], re_formula="1",
                         vc_formula={"rep_ID": "0+C(rep_ID)"}).fit()
        t_sm = time.perf_counter() - t0
        rows.append(("statsmodels MixedLM (the chapter's call), same data", t_sm,
                     f"centre var {float(sm.cov_re.iloc[0, 0]):.6f}, rep var {float(sm.vcomp[0]):.6f}, "
                     f"llf {sm.llf:.4f}; speed-up x{t_sm / t_fast:.0f}"))
    if args.lme4:
        rows.append(_lme4_row(calls))

    n_trials = 1000
    t_design, design = _best(lambda: design_power_simulation(
        n_clusters=20, cluster_size=50, icc=0.05, effect=0.3, n_trials=n_trials, seed=1, n_jobs=args.jobs), 1)
    power = ", ".join(f"{a} {p:.3f}" for a, p in zip(design.table.allocation, design.table.power))
    rows.append((f"design-stage power, {n_trials:,} trials x {len(design.table)} allocations (20 clusters of 50)",
                 t_design, power))

    t_chapter, chapter = _best(lambda: chapter_power_simulation(
        calls, effect_sizes=[0.25, 0.5, 1.0], calls_per_rep=[100], seed=1, n_jobs=args.jobs), 1)
    power = ", ".join(f"effect {e:g}: {p:.3f}" for e, p in zip(chapter.table.effect, chapter.table.power))
    rows.append((f"chapter power simulation, {len(chapter.trials):,} trials (100 calls/rep)", t_chapter, power))

    width = max(len(r[0]) for r in rows)
    print(f"{'case'.ljust(width)}  {'seconds':>8}  result")
    print("-" * (width + 60))
    for name, seconds, note in rows:
        print(f"{name.ljust(width)}  {seconds:8.2f}  {note}")
    return 0


def _ddf_row(calls, fit) -> tuple[str, float, str]:
    """The df algebra alone (Satterthwaite and Kenward-Roger) from the fit's group statistics, and its peak memory."""
    import tracemalloc

    from crt_widgets.core.models import mixed_fast
    from crt_widgets.core.models.ddf import NestedDdf
    from crt_widgets.core.models.mixed import _prepare

    _, X, _, codes, _, _ = _prepare(FORMULA, calls, ["center_ID", "rep_ID"])
    y = calls["call_CSAT"].to_numpy(dtype=float)
    stats = mixed_fast.nested_stats(X, y, codes[1], codes[0])
    variances = np.array([fit.variance_components[g] for g in ("center_ID", "rep_ID", "residual")])

    def both():
        algebra = NestedDdf(stats, variances)
        return algebra.satterthwaite(), algebra.kenward_roger()

    seconds, _ = _best(both, 5)
    tracemalloc.start()
    both()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (f"df algebra alone ({stats.inner_n.size:,} reps in 10 centres): Satterthwaite + Kenward-Roger", seconds,
            f"peak memory {peak / 2**20:.2f} MiB (from the group statistics; no N x N matrix)")


def _lme4_row(calls) -> tuple[str, float, str]:
    if shutil.which("Rscript") is None:
        return ("lme4 (Rscript not installed)", float("nan"), "")
    script = Path(__file__).resolve().parents[1] / "tests" / "data" / "callcenter_small_lme4.R"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.csv"
        calls.to_csv(path, index=False)
        out = subprocess.run(["Rscript", str(script), str(path)], capture_output=True, text=True).stdout
    seconds = float(next(line.split()[1] for line in out.splitlines() if line.startswith("seconds")))
    vcs = {line.split()[1]: float(line.split()[2]) for line in out.splitlines() if line.startswith("vc ")}
    return ("R lme4 lmer (fit only, CSV read excluded)", seconds,
            f"centre var {vcs.get('center_ID', float('nan')):.6f}, rep var {vcs.get('rep_ID:center_ID', float('nan')):.6f}")


if __name__ == "__main__":
    sys.exit(main())

"""``crt-widgets power``: power of a two-arm cluster randomized trial.

    crt-widgets power --effect 0.3 --icc 0.05 --cluster-size 20 --clusters-per-arm 10
    crt-widgets power --effect 0.3 --icc 0.05 --cluster-size 20 --target-power 0.8
    crt-widgets power design --effect 0.3 --icc 0.05 --cluster-size 20 --n-clusters 20 --trials 1000 --seed 1
    crt-widgets power chapter --example callcenter --effects 0.5 1 --calls-per-rep 20 50 --seed 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


from crt_widgets.commands._inputs import read_csv_argument

NAME = "power"
HELP = "Power of a two-arm CRT: analytic (design effect), design-stage simulation, or Buisson's (2021) simulation."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", nargs="?", default="analytic", choices=["analytic", "design", "chapter"],
                   help="analytic formula (default), design-stage simulation, or simulation from historical data")
    p.add_argument("--effect", type=float, help="difference in means (binary: in proportions; design: SD units)")
    p.add_argument("--icc", type=float, help="intra-cluster correlation")
    p.add_argument("--cluster-size", type=float, help="mean cluster size")
    p.add_argument("--cv", type=float, default=0.0, help="coefficient of variation of cluster sizes (analytic)")
    p.add_argument("--clusters-per-arm", type=int, help="clusters in each arm (analytic)")
    p.add_argument("--target-power", type=float, help="report the clusters per arm needed for this power instead")
    p.add_argument("--sd", type=float, default=1.0, help="SD of an individual outcome (continuous)")
    p.add_argument("--outcome", default="continuous", choices=["continuous", "binary", "count"])
    p.add_argument("--p-control", type=float, help="control-arm proportion (binary, analytic)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--sides", type=int, default=2, choices=[1, 2])
    p.add_argument("--n-clusters", type=int, help="total clusters (design)")
    p.add_argument("--covariates", type=int, default=2, help="cluster-level covariates (design)")
    p.add_argument("--covariate-r2", type=float, default=0.5, help="share of between-cluster variance they explain")
    p.add_argument("--trials", type=int, default=1000, help="simulated trials (design)")
    p.add_argument("--data", type=Path, help="historical calls CSV (chapter)")
    p.add_argument("--example", choices=["callcenter"], help="use the bundled historical call-centre example (chapter)")
    p.add_argument("--effects", type=float, nargs="+", default=[0.5, 1.0], help="effect sizes (chapter)")
    p.add_argument("--calls-per-rep", type=int, nargs="+", default=[20, 50], help="calls per representative (chapter)")
    p.add_argument("--analysis", default="wald", choices=["wald", "bootstrap"], help="decision rule (chapter)")
    p.add_argument("--test", default="model", choices=["model", "permutation"],
                   help="design: adjusted mixed/cluster-level model, or the clustered permutation test over each design's space")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulations")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers (joblib; -1 for all cores)")
    p.add_argument("--dask", help="address of a Dask scheduler to run the simulations on")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    if args.mode == "analytic":
        result = _analytic(args)
    elif args.mode == "design":
        result = _design(args)
    else:
        result = _chapter(args)
    text = result.pop("text")
    print(json.dumps(result, indent=2, default=float) if args.json else text)
    return 0


def _require(args, *names: str) -> None:
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise ValueError(f"power {args.mode} needs {', '.join(missing)}")


def _analytic(args) -> dict:
    from crt_widgets.core.power.analytic import crt_clusters_needed, crt_power

    _require(args, "effect", "icc", "cluster_size")
    if args.outcome == "count":
        raise ValueError("--outcome count is available by simulation only (power design)")
    kwargs = dict(icc=args.icc, cluster_size=args.cluster_size, cv=args.cv, sd=args.sd, outcome=args.outcome,
                  p_control=args.p_control, alpha=args.alpha, sides=args.sides)
    if args.target_power is not None:
        k = crt_clusters_needed(args.effect, power=args.target_power, **kwargs)
        res = crt_power(args.effect, clusters_per_arm=k, **kwargs)
        text = f"clusters per arm needed for power {args.target_power:g}: {k}\n{res!r}"
        return {"clusters_per_arm": k, "power": res.power, "design_effect": res.design_effect, "text": text}
    _require(args, "clusters_per_arm")
    res = crt_power(args.effect, clusters_per_arm=args.clusters_per_arm, **kwargs)
    return {"power": res.power, "design_effect": res.design_effect, "df": res.df, "se": res.se, "text": repr(res)}


def _design(args) -> dict:
    from crt_widgets.core.power.design_simulation import design_power_simulation, permutation_analysis

    _require(args, "effect", "icc", "cluster_size", "n_clusters")
    res = design_power_simulation(
        analysis=permutation_analysis() if args.test == "permutation" else None, n_clusters=args.n_clusters, cluster_size=int(args.cluster_size), icc=args.icc, effect=args.effect,
        outcome=args.outcome, n_covariates=args.covariates, covariate_r2=args.covariate_r2, n_trials=args.trials,
        alpha=args.alpha, seed=args.seed, n_jobs=args.jobs, client=args.dask, progress=args.progress)
    return {"table": res.table.to_dict(orient="records"), "text": repr(res)}


def _chapter(args) -> dict:
    from crt_widgets.core.power.chapter import chapter_power_simulation

    if args.example == "callcenter":
        from crt_widgets.datasets import load_callcenter

        data = load_callcenter()
    elif args.data is not None:
        data = read_csv_argument(args.data)
    else:
        raise ValueError("power chapter needs --data CSV or --example callcenter")
    res = chapter_power_simulation(data, effect_sizes=args.effects, calls_per_rep=args.calls_per_rep,
                                   analysis=args.analysis, seed=args.seed, n_jobs=args.jobs, client=args.dask,
                                   progress=args.progress)
    return {"table": res.table.to_dict(orient="records"), "text": repr(res)}

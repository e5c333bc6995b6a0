"""``crt-widgets power``: power of a two-arm cluster randomized trial.

    crt-widgets power --effect 0.3 --icc 0.05 --cluster-size 20 --clusters-per-arm 10
    crt-widgets power --effect 0.3 --icc 0.05 --cluster-size 20 --target-power 0.8
    crt-widgets power --outcome binary --scale ratio --p-control 0.2 --effect 0.7 --icc 0.02 --clusters-per-arm 12 --target-power 0.8
    crt-widgets power --outcome count --rate-control 0.05 --rate-cv 0.25 --effect 0.7 --scale ratio --cluster-size 100 --target-power 0.8
    crt-widgets power design --effect 0.3 --icc 0.05 --cluster-size 20 --n-clusters 20 --trials 1000 --seed 1
    crt-widgets power chapter --example callcenter --effects 0.5 1 --calls-per-rep 20 50 --seed 1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


from crt_widgets.commands._inputs import read_csv_argument

NAME = "power"
HELP = ("Power of a CRT: analytic (every outcome, solving for any one input), design-stage simulation, or "
        "Buisson's (2021) simulation.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", nargs="?", default="analytic", choices=["analytic", "design", "chapter"],
                   help="analytic formula (default), design-stage simulation, or simulation from historical data")
    p.add_argument("--effect", type=float,
                   help="analytic: difference in means (binary: in proportions; a ratio with --scale); design: the "
                        "mean difference in SD units, or the log odds ratio (binary, control proportion 0.3), or the "
                        "log rate ratio (count, control mean 2)")
    p.add_argument("--icc", type=float, help="intra-cluster correlation")
    p.add_argument("--cluster-size", type=float, help="mean cluster size")
    p.add_argument("--cv", type=float, default=0.0, help="coefficient of variation of cluster sizes (analytic)")
    p.add_argument("--clusters-per-arm", type=int, help="clusters in each arm (analytic)")
    p.add_argument("--target-power", type=float,
                   help="solve for the one of --clusters-per-arm, --cluster-size, --effect left out (analytic; "
                        "clusters per arm when all are given but it)")
    p.add_argument("--sd", type=float, default=1.0, help="SD of an individual outcome (continuous)")
    p.add_argument("--outcome", default="continuous", choices=["continuous", "binary", "count"])
    p.add_argument("--p-control", type=float, help="control-arm proportion (binary, analytic)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--sides", type=int, default=2, choices=[1, 2])
    p.add_argument("--scale", default="difference", choices=["difference", "ratio", "odds_ratio"],
                   help="analytic, binary or count: the effect as a difference, a risk/rate ratio or an odds ratio")
    p.add_argument("--rate-control", type=float, help="control event rate per unit of person-time (count, analytic)")
    p.add_argument("--person-time", type=float, default=1.0, help="follow-up of each individual (count, analytic)")
    p.add_argument("--rate-cv", type=float, help="coefficient of variation k of the true cluster rates (count, analytic)")
    p.add_argument("--cluster-sizes", type=float, nargs="+", help="exact sizes of an arm's clusters (analytic)")
    p.add_argument("--r2-cluster", type=float, default=0.0, help="share of between-cluster variance covariates explain (analytic)")
    p.add_argument("--r2-individual", type=float, default=0.0, help="share of within-cluster variance covariates explain (analytic)")
    p.add_argument("--clusters-control", type=int, help="clusters in the control arm if different (analytic)")
    p.add_argument("--n-arms", type=int, default=2, help="arms, each compared with the control (analytic)")
    p.add_argument("--multiplicity", default="none", choices=["none", "bonferroni", "dunnett"],
                   help="adjustment for the comparisons of a multi-arm trial (analytic)")
    p.add_argument("--direction", default="increase", choices=["increase", "decrease"],
                   help="which way a detectable effect is sought (analytic, solving for --effect)")
    p.add_argument("--n-clusters", type=int, help="total clusters (design)")
    p.add_argument("--covariates", type=int, default=2, help="cluster-level covariates (design)")
    p.add_argument("--covariate-r2", type=float, default=0.5, help="share of between-cluster variance they explain")
    p.add_argument("--trials", type=int, default=1000, help="simulated trials (design)")
    p.add_argument("--data", type=Path, help="historical calls CSV (chapter)")
    p.add_argument("--example", choices=["callcenter"], help="use the bundled historical call-centre example (chapter)")
    p.add_argument("--effects", type=float, nargs="+", default=[0.5, 1.0], help="effect sizes (chapter)")
    p.add_argument("--calls-per-rep", type=int, nargs="+", default=[20, 50], help="calls per representative (chapter)")
    p.add_argument("--analysis", default="wald", choices=["wald", "bootstrap"], help="decision rule (chapter)")
    p.add_argument("--test", choices=["t", "z", "model", "permutation"],
                   help="analytic: t test on clusters - arms df (t, the default) or the normal approximation (z); "
                        "design: adjusted mixed/cluster-level model (model, the default), or the clustered permutation "
                        "test over each design's space (permutation)")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulations")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers (joblib; -1 for all cores)")
    p.add_argument("--dask", help="address of a Dask scheduler to run the simulations on")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# the modes that read each option (an option not listed here is read by every mode)
OPTION_MODES = {
    **dict.fromkeys(["cv", "clusters_per_arm", "target_power", "sd", "p_control", "sides", "scale", "rate_control",
                     "person_time", "rate_cv", "cluster_sizes", "r2_cluster", "r2_individual", "clusters_control",
                     "n_arms", "multiplicity", "direction"], ("analytic",)),
    **dict.fromkeys(["n_clusters", "covariates", "covariate_r2", "trials"], ("design",)),
    **dict.fromkeys(["effect", "icc", "cluster_size", "outcome", "alpha", "test"], ("analytic", "design")),
    **dict.fromkeys(["data", "example", "effects", "calls_per_rep", "analysis"], ("chapter",)),
    **dict.fromkeys(["seed", "jobs", "dask", "progress"], ("design", "chapter")),
}


def _check_options_for_mode(args: argparse.Namespace) -> None:
    """A ValueError naming the options given that this mode does not read: each mode reads its own, and an option
    ignored without a word gives a result that is not the one asked for."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    foreign: dict[tuple[str, ...], list[str]] = {}
    for name, modes in OPTION_MODES.items():
        if args.mode not in modes and getattr(args, name) != defaults[name]:
            foreign.setdefault(modes, []).append(f"--{name.replace('_', '-')}")
    for modes, flags in foreign.items():
        raise ValueError(f"{', '.join(flags)} {'is' if len(flags) == 1 else 'are'} for power {' or '.join(modes)}; "
                         f"power {args.mode} does not use {'it' if len(flags) == 1 else 'them'}")


def run(args: argparse.Namespace) -> int:
    _check_options_for_mode(args)
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
    from crt_widgets.core.power.analytic import crt_power

    test = args.test or "t"
    if test not in ("t", "z"):
        raise ValueError(f"--test {test} is for power design; power analytic takes --test t or --test z")
    sizes = ["cluster_size"] if args.cluster_sizes is None else []
    if args.target_power is None:
        _require(args, "effect", *sizes, "clusters_per_arm")
    else:
        left_out = [n for n in ("effect", *sizes, "clusters_per_arm") if getattr(args, n) is None]
        if len(left_out) != 1:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in left_out) or "none"
            raise ValueError(f"power {args.mode} --target-power solves for the one of --effect, --cluster-size and "
                             f"--clusters-per-arm left out; left out: {flags}")
    if args.outcome == "count":
        _require(args, "rate_control", "rate_cv")
    else:
        _require(args, "icc")
    kwargs = dict(cluster_size=args.cluster_size, cv=args.cv, alpha=args.alpha, sides=args.sides, test=test,
                  scale=args.scale, outcome=args.outcome, cluster_sizes=args.cluster_sizes, r2_cluster=args.r2_cluster,
                  r2_individual=args.r2_individual, clusters_control=args.clusters_control, n_arms=args.n_arms,
                  multiplicity=args.multiplicity, direction=args.direction, clusters_per_arm=args.clusters_per_arm,
                  power=args.target_power)
    if args.outcome == "continuous":
        kwargs.update(icc=args.icc, sd=args.sd)
    elif args.outcome == "binary":
        kwargs.update(icc=args.icc, p_control=args.p_control)
    else:
        kwargs.update(rate_control=args.rate_control, rate_cv=args.rate_cv, person_time=args.person_time)
    res = crt_power(args.effect, **kwargs)
    out = {"power": res.power, "effect": res.effect, "clusters_per_arm": res.clusters_per_arm,
           "cluster_size": res.cluster_size, "design_effect": res.design_effect, "df": res.df, "se": res.se,
           "critical_value": res.critical_value, "test": res.test, "scale": res.scale}
    if res.solved_for:
        target = f"{res.solved_for.replace('_', ' ')} for power {args.target_power:g}: "
        value = getattr(res, res.solved_for)
        out["solved_for"] = res.solved_for
        out["text"] = f"{target}{value:g}\n{res!r}"
    else:
        out["text"] = repr(res)
    return out


def _design(args) -> dict:
    from crt_widgets.core.power.design_simulation import design_power_simulation, permutation_analysis

    _require(args, "effect", "icc", "cluster_size", "n_clusters")
    if not float(args.cluster_size).is_integer():
        raise ValueError(f"--cluster-size: power design simulates whole clusters; got {args.cluster_size:g}")
    res = design_power_simulation(
        analysis=_design_analysis(args, permutation_analysis), n_clusters=args.n_clusters, cluster_size=int(args.cluster_size), icc=args.icc, effect=args.effect,
        outcome=args.outcome, n_covariates=args.covariates, covariate_r2=args.covariate_r2, n_trials=args.trials,
        alpha=args.alpha, seed=args.seed, n_jobs=args.jobs, client=args.dask, progress=args.progress)
    return {"table": res.table.to_dict(orient="records"), "text": repr(res)}


def _design_analysis(args, permutation_analysis):
    if args.test in ("t", "z"):
        raise ValueError(f"--test {args.test} is for power analytic; power design takes --test model or --test permutation")
    return permutation_analysis() if args.test == "permutation" else None


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

"""``crt-widgets multiarm``: covariate-constrained randomization to K arms or a 2^F factorial.

    crt-widgets multiarm --example edlead --size 1000000 --cutoff 0.01 --seed 2026 --out results/
    crt-widgets multiarm --data eds.csv --cluster-id ed --strata health_system --factors a b c \\
        --covariates volume location --categorical location --balance margins --n-best 5000 --out results/

Writes ``multiarm_allocation.csv`` (cluster, [stratum], arm, arm_label[, factor columns]) and
``multiarm_space.csv`` (``scheme,chosen,score,<cluster ids>``, one row per allocation of the
constrained space, arm labels, the one used marked ``chosen = 1``) and ``multiarm_audit.json``
(every parameter, the seed, the package version, the time, a hash of the input data, the messages).
"""
from __future__ import annotations

import argparse

import pandas as pd

from crt_widgets.commands._inputs import add_data_source, add_output, check_out_folder, print_fresh_seed, run_record

from crt_widgets.commands.stratify import read_data
from crt_widgets.core.randomization.multiarm import BALANCES, METRICS, MultiArmDesign
from crt_widgets.core.randomization.balanced_sampler import METHODS

NAME = "multiarm"
HELP = "Covariate-constrained randomization of clusters to K arms or a factorial, optionally stratified."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_source(p, "cluster", "edlead", "simulated ED-LEAD data (80 EDs, 14 health systems)")
    p.add_argument("--covariates", nargs="+", help="columns to balance (example: volume location)")
    p.add_argument("--categorical", nargs="*", default=None, help="covariates to dummy-code")
    p.add_argument("--cluster-id", help="column with the cluster labels (default 1..n)")
    p.add_argument("--strata", help="column whose strata get every arm before repeats")
    arms = p.add_mutually_exclusive_group()
    arms.add_argument("--arms", type=int, help="number of arms (default 8)")
    arms.add_argument("--arm-labels", nargs="+", help="arm labels")
    arms.add_argument("--factors", nargs="+", help="two-level factors of a full factorial")
    p.add_argument("--metric", choices=METRICS, default="l2")
    p.add_argument("--balance", choices=BALANCES, default="arms", help="all arms, or each factor's two halves")
    p.add_argument("--weights", nargs="+", type=float, help="one weight per covariate")
    p.add_argument("--factor-weights", nargs="+", type=float, help="one weight per factor (margins)")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--cutoff", type=float, help="quantile of the scores to keep (default 0.1)")
    rule.add_argument("--n-best", type=int, help="keep the N best allocations instead")
    p.add_argument("--size", type=int, default=100_000, help="candidate allocations to draw")
    p.add_argument("--method", choices=METHODS, default="auto", help="stratified sampler")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, printed)")
    add_output(p, "multiarm_allocation.csv, multiarm_space.csv and multiarm_audit.json")


EDLEAD = {"covariates": ["volume", "location"], "categorical": ["location"], "cluster_id": "ed",
          "strata": "health_system", "factors": ["a", "b", "c"]}


def build_design(args: argparse.Namespace) -> MultiArmDesign:
    data, _ = read_data(args)
    defaults = EDLEAD if args.example == "edlead" else {}
    covariates = args.covariates or defaults.get("covariates")
    if not covariates:
        raise ValueError("--covariates: name the columns to balance")
    example_categorical = [c for c in defaults.get("categorical", []) if c in covariates]
    categorical = args.categorical if args.categorical is not None else example_categorical
    factors = args.factors or (None if args.arms or args.arm_labels else defaults.get("factors"))
    rule = {"n_best": args.n_best} if args.n_best is not None else {"cutoff": 0.1 if args.cutoff is None else args.cutoff}
    return MultiArmDesign(data, covariates, args.arm_labels or args.arms, factors=factors, categorical=categorical,
                          cluster_id=args.cluster_id or defaults.get("cluster_id"),
                          strata=args.strata or defaults.get("strata"), metric=args.metric, balance=args.balance,
                          weights=args.weights, factor_weights=args.factor_weights, size=args.size,
                          method=args.method, seed=args.seed, **rule)


FILES = ["multiarm_allocation.csv", "multiarm_space.csv", "multiarm_audit.json"]


def run(args: argparse.Namespace) -> int:
    check_out_folder(args, FILES)
    design = build_design(args)
    allocation = design.draw()
    print_fresh_seed(args, design.seed)
    print(design)
    print(f"{len(design.scores):,} distinct candidates ({design.n_duplicates:,} duplicates removed); "
          f"constrained space: {len(design.space_index):,}; cutoff score {design.cutoff_score:.4f}; "
          f"allocation {allocation.space_position + 1:,} of the space (seed {design.seed})")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 200):
        print("\nBalance scores\n" + allocation.summary.round(4).to_string())
        print("\nBaseline table\n" + allocation.baseline_table.to_string())
        print("\nAllocation\n" + allocation.allocation.to_string(index=False))
        v = allocation.validity
        print(f"\nValidity: {v}" + (("\n" + v.pairs(10).round(4).to_string(index=False)) if v.available else ""))
    for text in v.messages():
        print(f"warning: {text}")
    if args.out:
        for kind, path in allocation.save(args.out, overwrite=args.force, record=run_record(args, NAME)).items():
            print(f"wrote {kind}: {path}")
    return 0

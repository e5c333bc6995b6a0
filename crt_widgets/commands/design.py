"""``crt-widgets design``: two-arm covariate-constrained randomization from a CSV.

    crt-widgets design --data clusters.csv --cluster-id county --n-treat 8 \\
        --covariates location inciis hispanic --categorical location --cutoff 0.1 --seed 12345 --out results/
"""
from __future__ import annotations

import argparse
import json

import pandas as pd

from crt_widgets.commands._inputs import (add_data_source, add_output, check_out_folder, print_fresh_seed,
                                          read_csv_argument, run_record)

from crt_widgets.core.randomization.constrained import ConstrainedDesign

NAME = "design"
HELP = "Covariate-constrained randomization of clusters to two arms (cvcrand's cvrall / cvrcov)."

DICKINSON = {
    "covariates": ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
    "categorical": ["location", "incomecat"], "cluster_id": "county", "n_treat": 8,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_source(p, "cluster", "dickinson", "a bundled example (with its paper's settings)")
    p.add_argument("--covariates", nargs="+", help="columns to balance")
    p.add_argument("--categorical", nargs="*", default=None, help="covariates to dummy-code")
    p.add_argument("--cluster-id", help="column with the cluster labels (default: 1..n)")
    p.add_argument("--n-treat", type=int, help="clusters in the treatment arm")
    p.add_argument("--metric", choices=["l2", "l1"], default="l2")
    p.add_argument("--weights", nargs="+", type=float, help="one weight per covariate")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--cutoff", type=float, default=None, help="quantile q of the scores to keep (default 0.1)")
    rule.add_argument("--n-schemes", type=int, help="keep the N best schemes instead")
    rule.add_argument("--constraints", nargs="+", help="one per covariate: any, sN, sfN, mN, mfN (cvrcov)")
    p.add_argument("--stratify", nargs="+", help="columns to balance exactly")
    p.add_argument("--size", type=int, default=50_000, help="schemes to sample when the space is larger")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--enumerate", dest="enumerate", action="store_true", default=None,
                     help="enumerate every scheme whatever the size")
    how.add_argument("--sample", dest="enumerate", action="store_false", help="sample even a small space")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, printed for the record)")
    add_output(p, "the allocation, the space (cvcrand CSV and JSON) and the audit file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def build_design(args: argparse.Namespace) -> ConstrainedDesign:
    """The design the arguments describe."""
    if args.example == "dickinson":
        from crt_widgets.datasets import load_dickinson

        data = load_dickinson()
        defaults = DICKINSON
    else:
        data, defaults = read_csv_argument(args.data), {}
    covariates = args.covariates or defaults.get("covariates")
    n_treat = args.n_treat if args.n_treat is not None else defaults.get("n_treat")
    if not covariates:
        raise ValueError("--covariates: name the columns to balance")
    if n_treat is None:
        raise ValueError("--n-treat: how many clusters go to treatment?")
    # the example's categorical columns apply to its own covariates only
    example_categorical = [c for c in defaults.get("categorical", []) if c in covariates]
    categorical = args.categorical if args.categorical is not None else example_categorical
    rule = {}
    if args.constraints:
        rule["constraints"] = args.constraints
    elif args.n_schemes is not None:
        rule["n_schemes"] = args.n_schemes
    else:
        rule["cutoff"] = 0.1 if args.cutoff is None else args.cutoff
    return ConstrainedDesign(
        data, covariates, n_treat, categorical=categorical,
        cluster_id=args.cluster_id or defaults.get("cluster_id"), metric=args.metric,
        weights=args.weights, stratify=args.stratify, size=args.size, enumerate=args.enumerate,
        seed=args.seed, **rule)


FILES = ["design_allocation.csv", "design_space_cvcrand.csv", "design_space.json.gz", "design_audit.json"]


def run(args: argparse.Namespace) -> int:
    check_out_folder(args, FILES)
    design = build_design(args)
    allocation = design.draw()
    print_fresh_seed(args, design.seed)
    files = allocation.save(args.out, overwrite=args.force, record=run_record(args, NAME)) if args.out else {}
    if args.json:
        from crt_widgets.core.io.files import json_ready

        doc = {**allocation.audit(), "bscores": allocation.summary["value"].to_dict(),
               "cluster_coin_des": (allocation.validity.table().to_dict(orient="index") if allocation.validity.available
                                    else allocation.validity.unavailable),
               "files": {k: str(v) for k, v in files.items()}}
        print(json.dumps(json_ready(doc), indent=2))
        return 0
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        for text in allocation.messages.values():
            print(text)
        print("\nBalance scores (bscores)\n" + allocation.summary.round(3).to_string())
        print("\nAllocation (1 = treatment)\n" + allocation.allocation.to_string(index=False))
        print("\nBaseline table\n" + allocation.baseline_table.to_string())
        v = allocation.validity
        print("\nRandomization validity (cluster_coin_des)\n"
              + (v.table().round(3).to_string() if v.available else v.unavailable))
        for text in design.diagnostics:
            print(f"warning: {text}")
        for kind, path in files.items():
            print(f"wrote {kind}: {path}")
    return 0

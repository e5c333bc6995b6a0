"""``crt-widgets analyze``: the clustered permutation test over a saved space, with CI and model-based companions.

    crt-widgets analyze --data outcomes.csv --space space.csv --outcome y --cluster county \\
        --family binomial --covariates location inciis --categorical location --ci

A multi-arm design's space (``crt-widgets multiarm --out``) is analysed one comparison at a time:
``--factor a`` (a factorial main effect), ``--treated-arms 2 3`` (those arms against the rest), or
``--treated-arms 2 --control-arms 1`` (arm 2 against arm 1, the other arms left out).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from crt_widgets.commands._inputs import add_data_source, read_csv_argument
from crt_widgets.core.io.files import json_ready
from crt_widgets.core.spaces.saved import SavedSpace

NAME = "analyze"
HELP = "Clustered permutation test (cvcrand's cptest) with a confidence interval, GEE and mixed model."

# crt_widgets.core.models.gee.SE_TYPES, spelled out so that parsing the command line imports no model code
GEE_SE = ("robust", "md", "kc", "fg", "avg")

DICKINSON = {"outcome": "outcome", "cluster": "county", "family": "binomial",
             "covariates": ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"],
             "categorical": ["location", "incomecat"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_source(p, "individual", "dickinson", "cvcrand's example outcomes and saved space")
    p.add_argument("--space", type=Path, help="the saved space (cvcrand CSV or crt-widgets JSON), or 'simple' "
                   "for the unconstrained space (with --treatment)")
    p.add_argument("--audit", type=Path, help="the audit record to verify the space file against (default: the "
                   "audit JSON the design saved beside it, when there is one)")
    p.add_argument("--treatment", help="0/1 arm column (constant within cluster); needed with --space simple, and "
                                        "checked against the allocation a saved space marks as used")
    comparison = p.add_mutually_exclusive_group()
    comparison.add_argument("--factor", help="multi-arm space: the main effect of this factor (arms with it "
                            "against arms without)")
    comparison.add_argument("--treated-arms", nargs="+", metavar="ARM",
                            help="multi-arm space: these arms against the rest (or against --control-arms)")
    p.add_argument("--control-arms", nargs="+", metavar="ARM",
                   help="multi-arm space, with --treated-arms: the comparator arms; the other arms are left out")
    p.add_argument("--outcome", help="outcome column")
    p.add_argument("--cluster", help="cluster id column")
    p.add_argument("--family", choices=["gaussian", "continuous", "binomial", "binary", "poisson", "count"])
    p.add_argument("--covariates", nargs="*", default=None, help="adjustment covariates")
    p.add_argument("--categorical", nargs="*", default=None, help="which covariates are categorical")
    p.add_argument("--alternative", choices=["two-sided", "greater", "less"], default="two-sided")
    p.add_argument("--ci", action="store_true", help="invert the test for an interval (and run GEE and mixed model)")
    p.add_argument("--gee-se", choices=GEE_SE, default="md",
                   help="with --ci: the GEE's sandwich correction (Mancl-DeRouen md, Kauermann-Carroll kc, Fay-Graubard "
                        "fg, their md-kc average avg, or robust); default md")
    p.add_argument("--estimands", action="store_true",
                   help="with --ci: also the cluster-average and individual-average effects (difference; risk or rate "
                        "ratio) by standardization, each with its permutation test")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--simple-size", type=int, default=50_000,
                   help="--space simple: enumerate up to this many schemes, else sample this many")
    p.add_argument("--seed", type=int, default=None, help="seed for sampling the simple space")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _observed_arms(args, data: pd.DataFrame, cluster: str) -> dict:
    """Each cluster's arm from the --treatment column (for the simple space)."""
    if not args.treatment or args.treatment not in data.columns:
        raise ValueError("--treatment: name the 0/1 arm column to test over the simple space")
    arms = data[[cluster, args.treatment]].dropna().drop_duplicates()
    if arms[cluster].duplicated().any():
        raise ValueError(f"--treatment: {args.treatment!r} varies within a cluster; it must be the cluster's arm")
    values = pd.unique(arms[args.treatment])
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    if numeric.isna().any() or not numeric.isin([0, 1]).all():
        shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in sorted(values, key=str)[:4])
        raise ValueError(f"--treatment: {args.treatment!r} must hold each cluster's arm as 0 or 1, got {shown}")
    return dict(zip(arms[cluster], pd.to_numeric(arms[args.treatment]).astype(int)))


def run(args: argparse.Namespace) -> int:
    from crt_widgets.core.analysis.trial import analyze_trial
    from crt_widgets.core.permutation.test import permutation_test

    if args.example == "dickinson":
        from crt_widgets.datasets import dickinson_cvcrand_space_path, load_dickinson_outcome

        data, defaults = load_dickinson_outcome(), dict(DICKINSON)
        space = args.space or dickinson_cvcrand_space_path()
    else:
        data, defaults, space = read_csv_argument(args.data), {}, args.space
        if space is None:
            raise ValueError("--space: give the space saved at design time")
    outcome = args.outcome or defaults.get("outcome")
    cluster = args.cluster or defaults.get("cluster")
    family = args.family or defaults.get("family", "gaussian")
    if not outcome or not cluster:
        raise ValueError("--outcome and --cluster are required")
    covariates = args.covariates if args.covariates is not None else defaults.get("covariates", [])
    # the example's categorical columns apply to its own covariates only
    example_categorical = [c for c in defaults.get("categorical", []) if c in covariates]
    categorical = args.categorical if args.categorical is not None else example_categorical
    observed, audit = None, args.audit
    if audit is not None and str(space) == "simple":
        raise ValueError("--audit: verifies a saved space file; the simple space is not a file")
    if str(space) == "simple":
        if args.factor or args.treated_arms:
            raise ValueError("--factor/--treated-arms: they choose a comparison of a saved multi-arm space")
        space, observed = "simple", _observed_arms(args, data, cluster)
    elif args.factor or args.treated_arms:
        from crt_widgets.core.io.spacefiles import read_multiarm_space

        space = read_multiarm_space(space, audit=audit).two_arm(factor=args.factor, treated=args.treated_arms,
                                                                control=args.control_arms)
        audit = None  # verified as it was read
    elif args.control_arms:
        raise ValueError("--control-arms: goes with --treated-arms (the arms compared with them)")
    if args.treatment and observed is None:  # a saved space marks the allocation used: the column must agree
        observed = _observed_arms(args, data, cluster)
    if args.estimands and not args.ci:
        raise ValueError("--estimands: goes with --ci (the model-based analysis)")
    if args.ci:
        report = analyze_trial(data, outcome, cluster, space, covariates, categorical, family, alpha=args.alpha,
                               alternative=args.alternative, observed=observed, simple_size=args.simple_size,
                               seed=args.seed, gee_se=args.gee_se, estimands=args.estimands, audit=audit)
        result, table = report.permutation, report.table()
    else:
        result = permutation_test(data, outcome, cluster, space, covariates, categorical, family,
                                  alternative=args.alternative, alpha=args.alpha, observed=observed,
                                  simple_size=args.simple_size, seed=args.seed, audit=audit)
        table = None
    compared = space.metadata if isinstance(space, SavedSpace) and "comparison" in space.metadata else None
    if args.json:
        doc = result.to_dict()
        if compared:
            doc["comparison"] = {k: compared[k] for k in ("treated_arms", "control_arms")}
        if args.ci:  # the fingerprint of the space analysed over, as the design's commitment and draw log give it
            doc["estimates"], doc["space_sha256"] = report.to_dict()["estimates"], report.space_sha256
        print(json.dumps(json_ready(doc), indent=2, allow_nan=False))
        return 0
    if compared:
        print(f"Comparison: {compared['comparison']}")
    print(result.statement)
    if args.alternative != "two-sided":
        print(f"{args.alternative} p-value = {result.p_value:.4g}")
    for note in result.notes + (report.notes if args.ci else []):
        print(f"note: {note}")
    if table is not None:
        with pd.option_context("display.width", 140, "display.max_columns", 10):
            print("\n" + table.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0

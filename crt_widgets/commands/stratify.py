"""``crt-widgets stratify``: perfectly balanced stratified randomization to K arms (ED-LEAD's design).

    crt-widgets stratify --data eds.csv --strata health_system --unit-id ed --factors a b c \\
        --seed 2026 --space-size 1000 --out results/
    crt-widgets stratify --example edlead --seed 1 --verify 50000

Writes ``stratify_allocation.csv`` (unit, stratum, arm, arm_label[, factor columns]) and
``stratify_space.csv`` (``scheme,chosen,score,<unit ids>``: ``--space-size`` independent draws of
the design, arm labels, the allocation used marked ``chosen = 1``; ``score`` is empty).
"""
from __future__ import annotations

import argparse

import pandas as pd

from crt_widgets.commands._inputs import (add_data_source, add_output, check_out_folder, print_fresh_seed,
                                          read_csv_argument, save_run_files)
from crt_widgets.core.io.files import from_chunks
from crt_widgets.core.io.spacefiles import arm_space_chunks
from crt_widgets.core.randomization.balanced_sampler import METHODS
from crt_widgets.core.randomization.stratified import StratifiedDesign
from crt_widgets.core.sizes import format_count

NAME = "stratify"
HELP = "Perfectly balanced stratified randomization of units to K arms or a 2^F factorial."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_source(p, "unit", "edlead", "simulated ED-LEAD data (80 EDs, 14 health systems)")
    p.add_argument("--strata", help="column with the stratum of each unit (example: health_system)")
    p.add_argument("--unit-id", help="column with the unit labels (default 1..n; example: ed)")
    arms = p.add_mutually_exclusive_group()
    arms.add_argument("--arms", type=int, help="number of arms (default 8)")
    arms.add_argument("--arm-labels", nargs="+", help="arm labels")
    arms.add_argument("--factors", nargs="+", help="two-level factors of a full factorial (a b c -> 8 arms)")
    p.add_argument("--method", choices=METHODS, default="auto", help="sampler (default auto: exact, which cannot fail, unless too large)")
    p.add_argument("--space-size", type=int, default=1000, help="draws written to the space file")
    p.add_argument("--verify", type=int, metavar="N", help="also check the procedure on N draws")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, printed)")
    add_output(p, "stratify_allocation.csv, stratify_space.csv and stratify_audit.json")


def read_data(args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    """The data and the example's default columns."""
    if args.example == "edlead":
        from crt_widgets.datasets import simulate_edlead

        return simulate_edlead(seed=2026), {"strata": "health_system", "unit_id": "ed", "factors": ["a", "b", "c"]}
    return read_csv_argument(args.data), {}


def column(data: pd.DataFrame, name: str | None, option: str) -> pd.Series | None:
    if name is None:
        return None
    if name not in data.columns:
        raise ValueError(f"{option}: column {name!r} is not in the data (columns: {', '.join(map(str, data.columns))})")
    return data[name]


def build_design(args: argparse.Namespace) -> StratifiedDesign:
    data, defaults = read_data(args)
    strata = column(data, args.strata or defaults.get("strata"), "--strata")
    if strata is None:
        raise ValueError("--strata: name the column with each unit's stratum")
    ids = column(data, args.unit_id or defaults.get("unit_id"), "--unit-id")
    factors = args.factors or (None if args.arms or args.arm_labels else defaults.get("factors"))
    n_arms = args.arm_labels or args.arms
    if args.space_size is None or args.space_size < 2:
        raise ValueError(f"--space-size: must be at least 2 (one allocation randomizes nothing), got {args.space_size}")
    return StratifiedDesign(strata.to_numpy(), n_arms, factors=factors, unit_ids=None if ids is None else ids.to_numpy(),
                            method=args.method, size=args.space_size, seed=args.seed)


FILES = ["stratify_allocation.csv", "stratify_space.csv", "stratify_audit.json"]


def run(args: argparse.Namespace) -> int:
    # every argument is checked before any draw is made or printed
    if args.verify is not None and args.verify < 1:
        raise ValueError(f"--verify: the number of draws to check must be at least 1, got {args.verify}")
    check_out_folder(args, FILES)
    design = build_design(args)
    # the allocation used: one of the space's independent draws, picked with the design's seed
    allocation = design.draw()
    space, chosen = design.space.arm_matrix(), allocation.space_position
    print(design)
    count = "too many to count" if design.n_possible is None else format_count(design.n_possible)
    print(f"seed {design.seed}; sampler {design.method}; allocations satisfying the rule: {count}; "
          f"allocation = draw {chosen + 1} of {len(space):,}")
    print_fresh_seed(args, design.seed)
    print("\nArm sizes\n" + allocation.arm_sizes().to_string())
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print("\nAllocation\n" + allocation.table.to_string(index=False))
    if args.verify:
        v = design.verify(args.verify)
        with pd.option_context("display.width", 160, "display.max_columns", 40):
            print(f"\nVerification on {v.n_draws:,} draws: probability of each arm, first 6 units "
                  f"(expected {v.expected_probability:.3f})\n" + v.unit_probabilities.head(6).round(3).to_string())
            print("\nMean count of each arm per stratum\n" + v.stratum_means.round(3).to_string())
            print("\nExpected (stratum size / K)\n" + v.expected_counts.iloc[:, :1].round(3).T.to_string())
        print(f"\n{v}")
    if args.out:
        space_csv = from_chunks(arm_space_chunks(design.unit_ids, space, design.arms.labels, chosen))
        files = save_run_files(args, NAME, {
            "allocation": ("stratify_allocation.csv", allocation.table.to_csv(index=False), None),
            "space": ("stratify_space.csv", space_csv, len(space))},
            design.seed, allocation.table, sampler=design.method, space_size=len(space), chosen_draw=chosen + 1)
        for kind, path in files.items():
            print(f"wrote {kind}: {path}")
    return 0

"""``crt-widgets match``: pair (or group) matching of clusters and randomization within the sets.

    crt-widgets match --example callcenter --seed 1 --out results/
    crt-widgets match --data centres.csv --cluster-id center_ID --covariates nreps avg_age --method optimal

Writes ``match_allocation.csv`` (cluster, group, arm; group empty when unmatched) and
``match_space.csv`` in the multi-arm space format (``scheme,chosen,score,<cluster ids>``, arms 0, 1, ...;
every within-set assignment, or a sample when there are more than ``--max-enumerate``; the allocation
used marked). With two arms also ``match_space.json.gz``, the two-arm space (arm 1 treated) that
``crt-widgets analyze --space`` reads as it is, clusters matched by id.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from crt_widgets.commands._inputs import (add_data_source, add_output, check_out_folder, print_fresh_seed,
                                          read_csv_argument, save_run_files)
from crt_widgets.core.randomization.matching import MatchedDesign, compare_matchings, match_clusters
from crt_widgets.core.io.files import data_sha256, from_chunks
from crt_widgets.core.io.spacefiles import arm_space_chunks, space_json_bytes
from crt_widgets.core.spaces.schemes import SchemeSet
from crt_widgets.core.sizes import format_count

NAME = "match"
HELP = "Match clusters into pairs (greedy or optimal) or groups and randomize within them."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_source(p, "cluster", "callcenter", "Buisson's (2021) centres (from the bundled calls)")
    p.add_argument("--covariates", nargs="+", help="columns to match on (default: every float column)")
    p.add_argument("--cluster-id", help="column with the cluster labels (default 1..n)")
    p.add_argument("--method", choices=["optimal", "greedy"], default="optimal")
    p.add_argument("--group-size", type=int, default=2, help="clusters per set (greedy for more than 2)")
    p.add_argument("--arms", type=int, default=2, help="arms randomized within each set")
    p.add_argument("--max-enumerate", type=int, default=2 ** 16, help="enumerate the space up to this size")
    p.add_argument("--size", type=int, default=50_000, help="schemes sampled when the space is larger")
    p.add_argument("--seed", type=int, help="seed (default: fresh entropy, printed)")
    add_output(p, "match_allocation.csv, match_space.csv (and match_space.json.gz) and match_audit.json")


def callcenter_centres() -> pd.DataFrame:
    """Centre-level covariates as Buisson (2021) builds them from the historical calls."""
    from crt_widgets.datasets import load_callcenter

    calls = load_callcenter()
    centres = calls.groupby("center_ID").agg(
        nreps=("rep_ID", "nunique"), avg_call_CSAT=("call_CSAT", "mean"), avg_age=("age", "mean"),
        pct_reason_pmt=("reason", lambda x: float((x == "payment").mean()))).reset_index()
    centres["nreps"] = centres["nreps"].astype(float)
    return centres


def read(args: argparse.Namespace) -> tuple[pd.DataFrame, str | None]:
    if args.example == "callcenter":
        return callcenter_centres(), args.cluster_id or "center_ID"
    return read_csv_argument(args.data), args.cluster_id


FILES = ["match_allocation.csv", "match_space.csv", "match_space.json.gz", "match_audit.json"]


def run(args: argparse.Namespace) -> int:
    check_out_folder(args, FILES)
    data, cluster_id = read(args)
    matching = match_clusters(data, args.covariates, method=args.method, cluster_id=cluster_id,
                              group_size=args.group_size)
    design = MatchedDesign(matching, args.arms, max_enumerate=args.max_enumerate, size=args.size, seed=args.seed)
    print(matching)
    default = " (every float column; name others with --covariates)" if args.covariates is None else ""
    print(f"matched on: {', '.join(map(str, matching.covariates))}{default}")
    if args.group_size == 2:
        print("\nTotal within-pair distance\n" + compare_matchings(data, args.covariates, cluster_id=cluster_id).to_string())
    if matching.unmatched:
        print(f"\nunmatched (randomized on its own): {', '.join(map(str, matching.unmatched))}")
    drawn = design.draw()
    space, chosen = design.space.arm_matrix(), drawn.space_position
    allocation = drawn.allocation[["cluster", "group", "arm"]]
    how = "all enumerated" if design.enumerated else f"{len(space):,} sampled"
    print(f"\n{format_count(design.n_possible)} within-set assignments ({how}); allocation = scheme {chosen + 1} (seed {design.seed})")
    print("\nAllocation\n" + allocation.to_string(index=False))
    print_fresh_seed(args, design.seed)
    if args.out:
        files = {"allocation": ("match_allocation.csv", allocation.to_csv(index=False), None),
                 "space": ("match_space.csv", from_chunks(arm_space_chunks(
                     matching.cluster_ids, space, [str(a) for a in range(design.n_arms)], chosen)), len(space))}
        if design.n_arms == 2:  # the space the permutation test reads as it is
            parameters = {"method": f"{args.method} matching, randomization within sets", "covariates": args.covariates,
                          "group_size": args.group_size, "n_possible": design.n_possible}
            files["two_arm_space"] = ("match_space.json.gz", space_json_bytes(
                SchemeSet.from_matrix(space.astype(np.uint8)), chosen, matching.cluster_ids, parameters=parameters,
                draw_seed=design.seed, data_sha256=data_sha256(data)), len(space))
        written = save_run_files(args, NAME, files, design.seed, allocation, method=args.method,
                                 n_possible=design.n_possible, space_size=len(space), chosen_scheme=chosen + 1)
        for kind, path in written.items():
            print(f"wrote {kind.replace('_', ' ')}: {path}")
    return 0

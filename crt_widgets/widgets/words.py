"""The app's words: arm names chosen by the user, and plain labels for the program names of the core.

The core keeps cvcrand's names (``n_treat``, ``samecount``, ``samearmhi``, arms coded 0 and 1), and so do
the files a draw downloads (the allocation CSV, the space files, the audit record), because R users and
scripts read them. What the screen and the report show is said in words, with the arms called by the
names the user gave them (Control and Intervention unless renamed).

>>> default_arm_names(2), default_arm_names(3)
(['Control', 'Intervention'], ['Control', 'Intervention A', 'Intervention B'])
>>> parse_arm_names("Usual care, Text reminders", 2)
['Usual care', 'Text reminders']
>>> validity_table_words(pd.DataFrame({"Mean": [1.0]}, index=["samefrac"])).index.tolist()
['pairs in the same arm: share of schemes']
"""
from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence

import pandas as pd

DEFAULT_TWO_ARMS = ("Control", "Intervention")
MAX_ARM_NAME = 40  # characters: a name fits a table header and the draw's confirmation

# cvcrand's rows of the validity summary (cluster_coin_des), in words
VALIDITY_ROWS = {
    "samecount": "pairs in the same arm: number of schemes",
    "samefrac": "pairs in the same arm: share of schemes",
    "diffcount": "pairs in different arms: number of schemes",
    "difffrac": "pairs in different arms: share of schemes",
}
VALIDITY_COLUMNS = {"Std Dev": "SD", "25th Pctl": "25th percentile", "75th Pctl": "75th percentile"}

# the design's settings as the report lists them: program name -> words
SETTING_WORDS = {
    "method": "method",
    "covariates": "covariates balanced",
    "n_treat": "clusters in the intervention arm",
    "n_arms": "number of arms",
    "categorical": "categorical covariates",
    "cluster_id": "cluster identifier column",
    "metric": "balance score",
    "weights": "weights",
    "cutoff": "cutoff quantile q",
    "n_best": "keep the best N schemes",
    "n_schemes": "keep the best N schemes",
    "constraints": "constraints on each covariate",
    "stratify": "stratified on",
    "strata": "stratified on",
    "size": "schemes sampled when not all are listed",
    "enumerate": "list all schemes",
    "enumerated": "all possible schemes listed",
    "n_clusters": "number of clusters",
    "seed": "design seed",
    "samearmhi": "validity flag: pairs together in more than this share of schemes",
    "samearmlo": "validity flag: pairs together in less than this share of schemes",
    "balance": "balance across",
    "factors": "factors",
    "arms": "arms",
}
METRIC_WORDS = {"l2": "l2 (sum of weighted squared differences)", "l1": "l1 (sum of weighted absolute differences)"}


# a message from the core starts with the argument it is about; the screen names the control instead
CONTROL_WORDS = {
    "n_treat": "intervention clusters", "size": "sample size", "seed": "sampling seed", "n_best": "best N",
    "n_schemes": "best N", "cutoff": "cutoff q", "n_arms": "arms", "cluster_id": "cluster id",
    "covariates": "covariates", "categorical": "categorical", "stratify": "stratify", "weights": "weights",
    "enumerate": "schemes", "metric": "metric", "strata": "stratify",
}


def plain_message(text: str) -> str:
    """A core message with its leading argument name ("n_treat: ...") replaced by the control's words.

    >>> plain_message("n_treat: must be between 1 and 15 for 16 clusters, got 20")
    'intervention clusters: must be between 1 and 15 for 16 clusters, got 20'
    """
    name, colon, rest = str(text).partition(":")
    if colon and name in CONTROL_WORDS:
        return CONTROL_WORDS[name] + colon + rest
    return str(text)


def result_columns_words(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The analysis table's columns in words for the screen (the CSV download keeps ``ci_low``, ``p_value``, ...).

    >>> result_columns_words(pd.DataFrame(columns=["effect", "se", "ci_low", "ci_high", "p_value"])).columns.tolist()
    ['estimate', 'SE', '95% CI from', '95% CI to', 'p-value']
    """
    level = f"{1 - float(alpha):.0%}"
    words = {"effect": "estimate", "se": "SE", "ci_low": f"{level} CI from", "ci_high": f"{level} CI to",
             "p_value": "p-value", "icc": "ICC"}
    out = table.rename(columns=words)
    if out.index.name == "method":
        out.index.name = None
    return out


def default_arm_names(n_arms: int, labels: Sequence[str] | None = None) -> list[str]:
    """Names for ``n_arms`` arms: Control and Intervention for two; Control, Intervention A, B, ... for more;
    a factorial design's own arm labels (its factor levels) when ``labels`` names them.

    >>> default_arm_names(4, ["a=0,b=0", "a=1,b=0", "a=0,b=1", "a=1,b=1"])
    ['a=0,b=0', 'a=1,b=0', 'a=0,b=1', 'a=1,b=1']
    """
    n_arms = int(n_arms)
    if n_arms < 2:
        raise ValueError(f"n_arms: a trial has at least 2 arms, got {n_arms}")
    if labels is not None and len(labels) == n_arms and not all(str(x).isdigit() for x in labels):
        return [str(x) for x in labels]
    if n_arms == 2:
        return list(DEFAULT_TWO_ARMS)
    letters = string.ascii_uppercase
    return ["Control"] + [f"Intervention {letters[i] if i < 26 else i + 1}" for i in range(n_arms - 1)]


def parse_arm_names(text: str, n_arms: int) -> list[str]:
    """The arm names typed as one text, separated by commas (in the order of the arm codes: 0 then 1).
    Raises ``ValueError`` naming the problem: a wrong count, an empty, repeated or overlong name.

    >>> parse_arm_names("A, B", 3)
    Traceback (most recent call last):
    ...
    ValueError: arm names: give 3 names separated by commas (one per arm), got 2
    """
    names = [part.strip() for part in str(text).split(",")]
    if len(names) != int(n_arms):
        raise ValueError(f"arm names: give {n_arms} names separated by commas (one per arm), got {len(names)}")
    if any(not name for name in names):
        raise ValueError("arm names: a name is empty; give every arm a name")
    if len({name.casefold() for name in names}) < len(names):
        raise ValueError("arm names: two arms have the same name; give each arm its own")
    long = [name for name in names if len(name) > MAX_ARM_NAME]
    if long:
        raise ValueError(f"arm names: at most {MAX_ARM_NAME} characters each; {long[0][:20]!r}... is {len(long[0])}")
    return names


def arm_name_map(names: Sequence[str], labels: Sequence[str] | None = None) -> dict[str, str]:
    """The core's arm labels (as text) to the names: two arms "0"/"1", more arms "1", "2", ..., or the
    design's own ``labels`` (a factorial design's "none", "a", "b", "a+b"), in the order of the arm codes.

    >>> arm_name_map(["Control", "Intervention"])
    {'0': 'Control', '1': 'Intervention'}
    >>> arm_name_map(["Usual care", "Reminder", "Visit", "Both"], ["none", "a", "b", "a+b"])["a+b"]
    'Both'
    """
    if labels is not None and len(labels) == len(names):
        return {str(label): str(name) for label, name in zip(labels, names)}
    start = 0 if len(names) == 2 else 1
    return {str(i + start): str(name) for i, name in enumerate(names)}


def group_names(design) -> list[str]:
    """The default names of a design's groups: Control and Intervention (or a factorial design's levels), and
    "sequence 1", "sequence 2", ... for the order of a multi-period trial, whose groups are its sequences.

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> group_names(ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county"))
    ['Control', 'Intervention']
    """
    n = int(getattr(design, "n_arms", 2))
    if hasattr(design, "multiperiod"):
        return [f"sequence {i + 1}" for i in range(n)]
    return default_arm_names(n, design_arm_labels(design))


def design_arm_labels(design) -> list[str] | None:
    """A design's arm labels (a multi-arm or factorial design's), or None for the two-arm design (0 and 1)."""
    arms = getattr(design, "arms", None)
    labels = getattr(arms, "labels", None)
    return None if labels is None else [str(label) for label in labels]


def baseline_words(table: pd.DataFrame, names: Sequence[str], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The core's baseline table with its columns "arm = 0", "arm = 1" (or "arm = 1", "arm = 2", ...) named
    after the arms; the SMDs it carries (``attrs``) are kept.

    >>> t = pd.DataFrame({"arm = 0": ["1"], "arm = 1": ["2"], "SMD": ["0.1"]})
    >>> baseline_words(t, ["Usual care", "Reminders"]).columns.tolist()
    ['Usual care', 'Reminders', 'SMD']
    """
    mapping = arm_name_map(names, labels)
    renamed = {}
    for column in table.columns:
        text = str(column)
        if text.startswith("arm = ") and text[len("arm = "):] in mapping:
            renamed[column] = mapping[text[len("arm = "):]]
    out = table.rename(columns=renamed)
    out.attrs = dict(table.attrs)
    return out


def assignment_words(message: str, names) -> str:
    """The design's assignment message ("... to treatment and 8 to control", "... to 3 arms (1, 2, 3) ...")
    with the arms' names.

    >>> assignment_words("assign 8 clusters to treatment and 8 to control", ["Usual care", "Reminders"])
    'assign 8 clusters to Reminders and 8 to Usual care'
    """
    if len(names) == 2:
        return message.replace("to treatment and", f"to {names[1]} and").replace("to control", f"to {names[0]}")
    codes = "(" + ", ".join(str(i + 1) for i in range(len(names))) + ")"
    return message.replace(codes, "(" + ", ".join(names) + ")")


def allocation_words(allocation: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The allocation (one row per cluster) with the arm's name beside its code, for the screen and report.

    >>> allocation_words(pd.DataFrame({"county": [1, 2], "arm": [1, 0]}), ["Control", "Intervention"])
       county           arm
    0       1  Intervention
    1       2       Control
    """
    frame = allocation.copy()
    if "arm" not in frame.columns:  # a multi-period order: each cluster's sequence, already in words
        return frame
    codes = frame["arm"].astype(int)
    named = [str(names[c]) if 0 <= c < len(names) else str(c) for c in codes]
    frame = frame.drop(columns=[c for c in ("arm", "arm_label") if c in frame.columns])
    frame["arm"] = named
    return frame


def validity_table_words(table: pd.DataFrame) -> pd.DataFrame:
    """cvcrand's validity summary (rows samecount, samefrac, diffcount, difffrac) with rows and columns in words."""
    return table.rename(index=VALIDITY_ROWS, columns=VALIDITY_COLUMNS)


def setting_words(parameters: Mapping, covariates: Sequence[str] | None = None,
                  arm_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The design's settings as a table of words (setting, value, and the program's name of the setting);
    weights are listed with their covariates' names, and unset settings are left out.

    >>> setting_words({"n_treat": 8, "weights": [1.0, 0.5], "n_best": None, "samearmhi": 0.75},
    ...               covariates=["inciis", "hispanic"]).to_dict("records")[:2]
    [{'setting': 'clusters in the intervention arm', 'value': '8', 'program name': 'n_treat'}, {'setting': 'weights', 'value': 'inciis 1, hispanic 0.5', 'program name': 'weights'}]
    """
    rows = []
    for key, value in parameters.items():
        if value is None or (isinstance(value, (list, tuple, dict)) and not len(value)):
            continue
        if key == "weights" and covariates is not None and isinstance(value, (list, tuple)) \
                and len(value) == len(covariates):
            shown = ", ".join(f"{c} {float(v):g}" for c, v in zip(covariates, value))
        elif key == "metric":
            shown = METRIC_WORDS.get(str(value), str(value))
        elif key == "n_treat" and arm_names is not None and len(arm_names) == 2:
            rows.append({"setting": f"clusters in the {arm_names[1]} arm", "value": str(value), "program name": key})
            continue
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            shown = ", ".join(map(str, value))
        elif isinstance(value, dict):
            shown = json.dumps(value)
        else:
            shown = str(value)
        rows.append({"setting": SETTING_WORDS.get(key, key.replace("_", " ")), "value": shown, "program name": key})
    return pd.DataFrame(rows, columns=["setting", "value", "program name"])


def position_words(position: int, n_schemes: int) -> str:
    """Which scheme of the constrained space was drawn, counted from 1 on the screen, with the audit's
    count from 0 beside it, so the two never seem to disagree.

    >>> position_words(138694, 200000)
    'scheme 138,695 of the 200,000 in the constrained space (the audit file counts from 0: position 138,694)'
    """
    return (f"scheme {position + 1:,} of the {n_schemes:,} in the constrained space "
            f"(the audit file counts from 0: position {position:,})")

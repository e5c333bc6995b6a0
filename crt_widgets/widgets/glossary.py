"""Short help beside the app's controls, and the glossary with its references.

Each help text is an info toggle (``<details>``: opened with a click, Enter or Space, read by a screen
reader, no hover needed), short enough to read beside the control; the glossary says the same at more
length, with the literature the methods come from.

>>> "Li et al. 2017" in help_html("metric")
True
>>> [term for term, _ in GLOSSARY][:3]
['Scheme', 'Constrained space', 'Balance score']
>>> all(ref in glossary_html() for ref in ("Moulton LH (2004)", "Greene EJ (2017)", "DeLong ER (2016)"))
True
"""
from __future__ import annotations

import html

# one or two sentences each: what the control does and how to choose it
HELP = {
    "weights": ("How much each covariate counts in the balance score (0 leaves it out). Covariates are "
                "standardized first, so weight 1 for all treats them alike (Li et al. 2016)."),
    "stratify": ("Balance a categorical covariate exactly: only schemes with the same share of each of its levels in "
                 "every arm are kept. Its weight then has nothing left to do and is switched off."),
    "metric": ("How imbalance is added up over the covariates: l2 sums the weighted squared differences of the "
               "arms' standardized means (Raab and Butcher 2001), l1 the weighted absolute differences "
               "(Li et al. 2017). Both keep similar schemes; l2 is cvcrand's default."),
    "cutoff": ("Keep the best-balanced share q of all schemes (q = 0.1 keeps the best 10%). Smaller q balances "
               "better but leaves fewer schemes: too small a space makes the allocation nearly predictable "
               "and the permutation test coarse (Moulton 2004; Li et al. 2016). The slider moves on a log scale."),
    "best_n": "Keep exactly the N best-balanced schemes instead of a share of them.",
    "score": ("A scheme's balance score is its imbalance: 0 is perfect balance, larger is worse. With two arms it is "
              "cvcrand's scale (sums over the intervention arm); with three or more arms it is the mean over pairs "
              "of arms of the differences of standardized means, a smaller scale: compare scores only between "
              "designs with the same number of arms."),
    "validity": ("Constraining can tie clusters together. Each pair of clusters should share an arm in between 25% "
                 "and 75% of the kept schemes (Greene 2017); under simple randomization about half."),
    "arm_names": ("What the arms are called on the screen and in the report (code 0, 1, ... in the files, in this "
                  "order). Separate the names with commas."),
    "arms": "How many arms. Two arms use cvcrand's method; three or more, the multi-arm engine.",
    "n_treat": "How many clusters go to the intervention arm (two arms); the others are controls.",
    "schemes": ("List every possible scheme when there are few enough, or sample this many at random (duplicates "
                "removed). The sampling seed decides which are sampled; the draw has its own seed."),
    "draw_seed": ("Type a seed fixed in advance (for example in the protocol), or leave it empty: the operating system "
                  "then supplies one at the moment of the draw. Either way it is shown and recorded."),
    "adjust": ("Adjust for the covariates the design balanced: the permutation test keeps its size either way, "
               "and adjusting for prognostic covariates gains power (Li et al. 2016, 2017)."),
    "alternative": ("Two-sided unless the protocol fixed the direction of the effect in advance; the p-value counts "
                    "the schemes of the constrained space whose effect is at least as extreme as the one observed."),
    "commitment": ("A fingerprint (SHA-256) of the space and its settings, fixed before the seed: anyone can check "
                   "later that the draw came from this space."),
}

GLOSSARY = [
    ("Scheme", "One allocation of all clusters to the arms."),
    ("Constrained space", "The schemes kept because they balance the covariates well enough; the allocation "
                          "is drawn from them with equal chance (Moulton 2004)."),
    ("Balance score", HELP["score"]),
    ("l2 and l1", HELP["metric"]),
    ("Cutoff q", HELP["cutoff"]),
    ("Weights", HELP["weights"]),
    ("Stratify", HELP["stratify"]),
    ("SMD", "Standardized mean difference: the difference of the arms' means in standard deviations; above 0.1 "
            "is usually called imbalance."),
    ("Validity", HELP["validity"]),
    ("Permutation test", "The analysis compares the observed effect with the effects of every scheme of the "
                         "constrained space (the design's own randomization), so its p-value is exact "
                         "(Li et al. 2016, 2017)."),
    ("Commitment", HELP["commitment"]),
    ("Seed", HELP["draw_seed"]),
]

REFERENCES = [
    "Greene EJ (2017). A SAS macro for covariate-constrained randomization of general cluster-randomized and "
    "unstratified designs. Journal of Statistical Software 77(CS1). doi:10.18637/jss.v077.c01",
    "Li F, Lokhnygina Y, Murray DM, Heagerty PJ, DeLong ER (2016). An evaluation of constrained randomization for "
    "the design and analysis of group-randomized trials. Statistics in Medicine 35(10):1565-1579. doi:10.1002/sim.6813",
    "Li F, Turner EL, Heagerty PJ, Murray DM, Vollmer WM, DeLong ER (2017). An evaluation of constrained "
    "randomization for the design and analysis of group-randomized trials with binary outcomes. Statistics in "
    "Medicine 36(24):3791-3806. doi:10.1002/sim.7410",
    "Moulton LH (2004). Covariate-based constrained randomization of group-randomized trials. Clinical Trials "
    "1(3):297-305. doi:10.1191/1740774504cn024oa",
    "Raab GM, Butcher I (2001). Balance in cluster randomized trials. Statistics in Medicine 20(3):351-365.",
    "Yu H, Li F, Gallis JA, Turner EL (2019). cvcrand: a package for covariate-constrained randomization and the "
    "clustered permutation test for cluster randomized trials. The R Journal 11(2):191-209.",
]


def help_html(key: str, label: str | None = None) -> str:
    """An info toggle "About <label>" with the help for ``key`` (see :data:`HELP`); toggles sit side by side
    and open in place (click, Enter or Space)."""
    text = HELP[key]
    label = label or key.replace("_", " ")
    name = html.escape(f"About {label}")
    return (f'<details class="crt-help" style="display:inline-block;vertical-align:top;font-size:90%;'
            f'margin:0 1.2em 4px 0"><summary aria-label="{name}" style="cursor:pointer;color:#1a5fb4">'
            f'{name}</summary><div style="white-space:normal;max-width:440px">{html.escape(text)}</div></details>')


def glossary_html() -> str:
    """The glossary (terms and their meaning) and the references, folded under one heading."""
    terms = "".join(f"<dt style='font-weight:bold;margin-top:4px'>{html.escape(term)}</dt>"
                    f"<dd style='margin-left:1.5em'>{html.escape(text)}</dd>" for term, text in GLOSSARY)
    refs = "".join(f"<li>{html.escape(ref)}</li>" for ref in REFERENCES)
    return ('<details class="crt-glossary" style="white-space:normal;max-width:900px"><summary style="cursor:pointer">'
            "<b>Glossary and references</b></summary>"
            f"<dl>{terms}</dl><h4 style='margin:8px 0 2px'>References</h4><ol>{refs}</ol></details>")

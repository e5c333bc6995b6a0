"""Balance scores binned in numpy for the charts: the browser receives bin counts, never millions of scores.

Works for any design with ``scores`` (every candidate) and ``space_scores`` (the constrained space).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def histogram_data(design, bins: int = 60) -> pd.DataFrame:
    """All balance scores binned in numpy: per bin, the number of candidate schemes (``total``) and
    how many of them are in the constrained space (``kept``; exact, a bin can straddle the cutoff).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> d = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county")
    >>> frame = histogram_data(d)
    >>> int(frame["total"].sum()), int(frame["kept"].sum()) == len(d.space_index)
    (12870, True)
    """
    edges = np.histogram_bin_edges(design.scores, bins=bins)
    total, _ = np.histogram(design.scores, bins=edges)
    kept, _ = np.histogram(design.space_scores, bins=edges)
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "total": total, "kept": kept})


def zoom_data(design, bins: int = 30) -> pd.DataFrame:
    """The constrained space's scores binned in numpy (the zoomed histogram beside the full one).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> d = ConstrainedDesign(load_dickinson(), ["inciis", "hispanic"], 8, cluster_id="county")
    >>> int(zoom_data(d)["count"].sum()) == len(d.space_index)
    True
    """
    counts, edges = np.histogram(design.space_scores, bins=bins)
    return pd.DataFrame({"left": edges[:-1], "right": edges[1:], "count": counts})

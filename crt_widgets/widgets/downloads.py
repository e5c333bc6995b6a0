"""Downloads that work in JupyterLab, in Voilà and in a headless browser: data-URI links.

>>> "download=\\"a.csv\\"" in download_link("a.csv", "x,y\\n", "text/csv", "Allocation")
True
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crt_widgets.core.randomization.constrained import Allocation
from crt_widgets.core.io.spacefiles import write_cvcrand_csv
from crt_widgets.widgets.words import arm_name_map, design_arm_labels, group_names
from crt_widgets.widgets.theme import LINK_TEXT


def download_link(filename: str, content: str | bytes, mime: str, label: str) -> str:
    """An HTML anchor that downloads ``content`` as ``filename``."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    b64 = base64.b64encode(raw).decode("ascii")
    return (f'<a class="crt-download" download="{html.escape(filename)}" href="data:{mime};base64,{b64}" '
            f'style="margin-right:1em;color:{LINK_TEXT};text-decoration:underline">{html.escape(label)}</a>')


def allocation_files(allocation, draw: dict | None = None, earlier: Sequence[dict] = (),
                     arm_names: Sequence[str] | None = None) -> dict[str, tuple]:
    """filename -> (content, mime, label) for everything the trial's records need; ``draw`` is the draw's
    log entry (:func:`~crt_widgets.core.io.drawlog.draw_entry`) and ``earlier`` the session's earlier
    ones, which the report and the audit record name. ``arm_names`` (default Control, Intervention for two
    arms) name the arms in the report; the CSV and JSON files keep the program's codes and names (cvcrand's),
    and the audit record maps each code to its name (``arm_names``).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
    >>> [label for _, _, label in allocation_files(a).values()][:4]
    ['Allocation (CSV)', 'Constrained space (cvcrand CSV)', 'Constrained space (JSON, labelled)', 'Audit record (JSON)']
    """
    import hashlib

    from crt_widgets.core.io.audits import SPACE_FILES, space_file_entry
    from crt_widgets.core.io.files import json_ready
    from crt_widgets.widgets.report import allocation_report, input_data_name

    d = allocation.design
    seed = allocation.seed
    names = list(arm_names) if arm_names is not None else group_names(d)
    spaces = {}
    if isinstance(allocation, Allocation):
        space_csv = write_cvcrand_csv(io.StringIO(), d.space.schemes, allocation.space_position,
                                      d.cluster_ids).getvalue()
        spaces[f"constrained_space_seed{seed}.csv"] = (space_csv, "text/csv", "Constrained space (cvcrand CSV)")
        # the labelled space (cluster ids, scores, the design's parameters): any size hands over to the analysis
        with tempfile.TemporaryDirectory() as folder:
            path = allocation.save_space(Path(folder) / "space.json.gz")
            spaces[f"constrained_space_seed{seed}.json.gz"] = (path.read_bytes(), "application/gzip",
                                                               "Constrained space (JSON, labelled)")
    else:
        from crt_widgets.core.io.spacefiles import write_arm_space

        buffer = io.StringIO()
        write_arm_space(buffer, d.cluster_ids, d.space.arm_matrix(), allocation.arm_labels,
                        allocation.space_position, d.space_scores)
        spaces[f"constrained_space_seed{seed}.csv"] = (buffer.getvalue(), "text/csv",
                                                       "Constrained space (CSV, arm labels)")
    # a multi-period order: each cluster's condition in each period, as the trial runs it
    matrix = ({f"treatment_matrix_seed{seed}.csv": (allocation.treatment_matrix().to_csv(), "text/csv",
                                                    "Treatment matrix (CSV, clusters x periods)")}
              if hasattr(allocation, "treatment_matrix") else {})
    # the audit lists each space file's SHA-256 and size, so that the analysis can verify it
    listed = {}
    for name, (content, _mime, _label) in spaces.items():
        raw = content.encode("utf-8") if isinstance(content, str) else content
        listed[name] = space_file_entry(Path(name), hashlib.sha256(raw).hexdigest(), len(d.space), size=len(raw))
    audit = {**allocation.audit(), SPACE_FILES: listed, **({} if draw is None else {"draw": draw})}
    if not hasattr(d, "multiperiod"):  # each arm code of the files and its name (a multi-period order has sequences)
        audit["arm_names"] = {str(code): name for code, name in enumerate(names)}
    return {
        f"allocation_seed{seed}.csv": (allocation.allocation.to_csv(index=False), "text/csv", "Allocation (CSV)"),
        **matrix,
        **spaces,
        f"audit_seed{seed}.json": (json.dumps(json_ready(audit), indent=2), "application/json",
                                   "Audit record (JSON)"),
        f"randomization_report_seed{seed}.html": (allocation_report(allocation, draw, earlier, names), "text/html",
                                                  "Report (HTML)"),
        # the data exactly as the design used them: re-running the report's code on this file reproduces the draw
        input_data_name(allocation): (d.data.to_csv(index=False), "text/csv", "Input data (CSV)"),
        # the baseline table as shown, for the paper: the CSV and a Word document with the table
        **baseline_files(allocation, None if hasattr(d, "multiperiod") else names),
    }


DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def baseline_files(allocation, arm_names: Sequence[str] | None = None) -> dict[str, tuple]:
    """The baseline table of ``allocation`` as CSV and as a Word document (columns: the arms, called
    ``arm_names`` when given, or the sequences of a multi-period order), with a note under the Word table
    saying which draw it describes."""
    from crt_widgets.core.io.baseline import baseline_csv, baseline_docx

    group = "Sequence" if hasattr(allocation, "treatment_matrix") else "Arm"
    table, seed = allocation.baseline_table, allocation.seed
    named = None if arm_names is None else arm_name_map(arm_names, design_arm_labels(allocation.design))
    note = (f"Clusters by {group.lower()} in the allocation drawn with seed {seed}. SMD: standardized mean "
            "difference (for a categorical characteristic, Yang and Dalton's multi-level SMD).")
    return {
        f"baseline_table_seed{seed}.csv": (baseline_csv(table, group, named), "text/csv", "Baseline table (CSV)"),
        f"baseline_table_seed{seed}.docx": (baseline_docx(table, f"Baseline characteristics by {group.lower()}",
                                                          note, group, named), DOCX_MIME, "Baseline table (Word)"),
    }


def commitment_json(design, space_sha256: str) -> str:
    """The commitment made before a draw's seed is entered: the space's SHA-256 with what it covers (the
    design's settings, its cluster ids, the number of schemes, the input data's SHA-256), so a third party
    can later check that a draw came from the space as committed (the JSON space download hashes the same).

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> d = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3)
    >>> json.loads(commitment_json(d, "ab" * 32))["n_schemes"]
    1576
    """
    from crt_widgets import __version__
    from crt_widgets.core.io.files import json_ready

    return json.dumps(json_ready({
        "commitment": "SHA-256 of the randomization space (schemes in order, cluster ids, settings), "
                      "made before the seed of the draw was entered",
        "space_sha256": space_sha256, "n_schemes": len(design.space_index),
        "cluster_ids": list(np.asarray(design.cluster_ids).tolist()), "settings": design.parameters(),
        "data_sha256": design.data_hash(), "package_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }), indent=2)


def download_links(files: dict[str, tuple]) -> str:
    """All download links of :func:`allocation_files` as one HTML fragment."""
    return "".join(download_link(name, *spec) for name, spec in files.items())

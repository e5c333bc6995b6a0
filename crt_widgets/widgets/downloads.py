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
import re
from pathlib import Path

from crt_widgets.core.randomization.constrained import Allocation
from crt_widgets.core.io.files import FileSet
from crt_widgets.core.io.spacefiles import write_cvcrand_csv


def download_link(filename: str, content: str | bytes, mime: str, label: str) -> str:
    """An HTML anchor that downloads ``content`` as ``filename``."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    b64 = base64.b64encode(raw).decode("ascii")
    return (f'<a class="crt-download" download="{html.escape(filename)}" href="data:{mime};base64,{b64}" '
            f'style="margin-right:1em;color:#1a5fb4;text-decoration:underline">{html.escape(label)}</a>')


def allocation_files(allocation) -> dict[str, tuple[str, str, str]]:
    """filename -> (content, mime, label) for everything the trial's records need.

    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
    >>> [label for _, _, label in allocation_files(a).values()][:3]
    ['Allocation (CSV)', 'Constrained space (cvcrand CSV)', 'Audit record (JSON)']
    """
    import hashlib

    from crt_widgets.core.io.audits import SPACE_FILES, space_file_entry
    from crt_widgets.core.io.files import json_ready
    from crt_widgets.widgets.report import allocation_report, input_data_name

    d = allocation.design
    if isinstance(allocation, Allocation):
        space_csv = write_cvcrand_csv(io.StringIO(), d.space.schemes, allocation.space_position, d.cluster_ids).getvalue()
        space_label = "Constrained space (cvcrand CSV)"
    else:
        from crt_widgets.core.io.spacefiles import write_arm_space

        buffer = io.StringIO()
        write_arm_space(buffer, d.cluster_ids, d.space.arm_matrix(), d.arms.labels, allocation.space_position, d.space_scores)
        space_csv, space_label = buffer.getvalue(), "Constrained space (CSV, arm labels)"
    seed = allocation.seed
    space_name = f"constrained_space_seed{seed}.csv"
    space_bytes = space_csv.encode("utf-8")
    # the audit lists the space file's SHA-256 and size, so that the analysis can verify it
    audit = {**allocation.audit(), SPACE_FILES: {space_name: space_file_entry(
        Path(space_name), hashlib.sha256(space_bytes).hexdigest(), len(d.space), size=len(space_bytes))}}
    return {
        f"allocation_seed{seed}.csv": (allocation.allocation.to_csv(index=False), "text/csv", "Allocation (CSV)"),
        space_name: (space_csv, "text/csv", space_label),
        f"audit_seed{seed}.json": (json.dumps(json_ready(audit), indent=2), "application/json",
                                   "Audit record (JSON)"),
        f"randomization_report_seed{seed}.html": (allocation_report(allocation), "text/html", "Report (HTML)"),
        # the data exactly as the design used them: re-running the report's code on this file reproduces the draw
        input_data_name(allocation): (d.data.to_csv(index=False), "text/csv", "Input data (CSV)"),
    }


def save_allocation_files(allocation, directory: str | Path) -> Path:
    """Write the files of :func:`allocation_files` into a new folder of ``directory`` named by the
    allocation's time and seed (a record kept even if the browser tab is closed); returns that folder.

    >>> import tempfile
    >>> from crt_widgets import ConstrainedDesign
    >>> from crt_widgets.datasets import load_dickinson
    >>> a = ConstrainedDesign(load_dickinson(), ["inciis"], 8, cluster_id="county", seed=3).draw()
    >>> sorted(p.name for p in save_allocation_files(a, tempfile.mkdtemp()).iterdir())[0]
    'allocation_seed3.csv'
    """
    stamp = str(getattr(allocation, "created", "") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    folder = Path(directory) / f"{re.sub(r'[^0-9A-Za-z]+', '', stamp)[:15]}_seed{allocation.seed}"
    suffix, target = 1, folder
    while target.exists():  # two draws in the same second: keep both
        suffix += 1
        target = folder.with_name(f"{folder.name}_{suffix}")
    files = allocation_files(allocation)
    audit = next(name for name in files if name.startswith("audit_"))
    with FileSet(target) as out:  # all or nothing; the audit record last
        for name in [n for n in files if n != audit] + [audit]:
            out.add(name, files[name][0])
    return target


def download_links(allocation: Allocation) -> str:
    """All download links of an allocation as one HTML fragment."""
    return "".join(download_link(name, *spec) for name, spec in allocation_files(allocation).items())

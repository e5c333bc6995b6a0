"""Downloads that work in JupyterLab, in Voilà and in a headless browser: data-URI links.

>>> "download=\\"a.csv\\"" in download_link("a.csv", "x,y\\n", "text/csv", "Allocation")
True
"""
from __future__ import annotations

import base64
import html
import io
import json

from crt_widgets.core.design import Allocation


def download_link(filename: str, content: str | bytes, mime: str, label: str) -> str:
    """An HTML anchor that downloads ``content`` as ``filename``."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    b64 = base64.b64encode(raw).decode("ascii")
    return (f'<a class="crt-download" download="{html.escape(filename)}" href="data:{mime};base64,{b64}" '
            f'style="margin-right:1em;color:#1a5fb4;text-decoration:underline">{html.escape(label)}</a>')


def allocation_files(allocation: Allocation) -> dict[str, tuple[str, str, str]]:
    """filename -> (content, mime, label) for everything the trial's records need."""
    from crt_widgets.core.spaceio import _jsonable, write_cvcrand_csv
    from crt_widgets.widgets.report import allocation_report

    d = allocation.design
    space_csv = write_cvcrand_csv(io.StringIO(), d.space, allocation.space_position)
    seed = allocation.seed
    return {
        f"allocation_seed{seed}.csv": (allocation.allocation.to_csv(index=False), "text/csv", "Allocation (CSV)"),
        f"constrained_space_seed{seed}.csv": (space_csv.getvalue(), "text/csv", "Constrained space (cvcrand CSV)"),
        f"audit_seed{seed}.json": (json.dumps(_jsonable(allocation.audit()), indent=2), "application/json", "Audit record (JSON)"),
        f"randomization_report_seed{seed}.html": (allocation_report(allocation), "text/html", "Report (HTML)"),
    }


def download_links(allocation: Allocation) -> str:
    """All download links of an allocation as one HTML fragment."""
    return "".join(download_link(name, *spec) for name, spec in allocation_files(allocation).items())

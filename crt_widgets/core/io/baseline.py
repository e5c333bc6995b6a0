"""The baseline table of an allocation as files for a paper or a report: CSV, and a Word document (.docx).

Headers are in plain words ("Control", "Treatment", "Standardized mean difference"), the cells exactly the
text of the table shown (:func:`~crt_widgets.core.diagnostics.tables.baseline_table`: counts with
percentages, means with SDs), so that the numbers in a manuscript are the ones on screen.

The Word file is written here, without a dependency: a .docx is a zip of XML parts (ECMA-376, Office Open
XML), and a document holding one table needs only three of them. Word, LibreOffice and Google Docs open it
as an editable table (borders above and below the header and at the foot, as journals set tables). The zip
carries fixed timestamps, so the same table gives the same bytes (and SHA-256) on any machine.

>>> table = pd.DataFrame({"arm = 0": ["8", "86.12 (4.85)"], "arm = 1": ["8", "87.88 (9.46)"], "SMD": ["", "0.233"]},
...                      index=["n", "inciis (mean (sd))"])
>>> print(baseline_csv(table))
Characteristic,Control,Treatment,Standardized mean difference
Clusters (n),8,8,
"inciis, mean (SD)",86.12 (4.85),87.88 (9.46),0.233
<BLANKLINE>
>>> baseline_docx(table)[:2]
b'PK'
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd

from crt_widgets.core.io.files import FileSet

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same table gives the same bytes
_ARM = re.compile(r"^arm = (.*)$")


def _arm_header(label: str, labels: list[str], group: str) -> str:
    if labels == ["0", "1"] and group == "Arm":
        return {"0": "Control", "1": "Treatment"}[label]
    return f"{group} {label}"


def _row_label(label: str) -> str:
    """Plain words for the table's row labels (the statistic after a comma, as journals print it)."""
    if label == "n":
        return "Clusters (n)"
    for suffix, plain in ((" (mean (sd))", ", mean (SD)"), (" (%)", ", n (%)")):
        if label.endswith(suffix):
            return label[: -len(suffix)] + plain
    return label


def plain_baseline(table: pd.DataFrame, group: str = "Arm") -> pd.DataFrame:
    """The baseline table with plain-word headers and a first column ``Characteristic``; the cells unchanged.
    ``group`` names what the columns are (``"Sequence"`` for the sequences of a stepped-wedge order); two arms
    labelled 0 and 1 are Control and Treatment.

    >>> t = pd.DataFrame({"arm = a": ["4"], "arm = b": ["4"], "arm = c": ["4"], "SMD": [""]}, index=["n"])
    >>> plain_baseline(t).columns.tolist()
    ['Characteristic', 'Arm a', 'Arm b', 'Arm c', 'Largest standardized mean difference between two arms']
    """
    if not isinstance(table, pd.DataFrame) or "SMD" not in table.columns:
        raise ValueError("table: expected a baseline table (columns 'arm = ...' and 'SMD')")
    arms = [m.group(1) for m in (_ARM.match(str(c)) for c in table.columns) if m]
    if len(arms) != table.shape[1] - 1:
        raise ValueError(f"table: expected columns 'arm = ...' and 'SMD', got {', '.join(map(str, table.columns))}")
    smd = ("Standardized mean difference" if len(arms) == 2 else
           f"Largest standardized mean difference between two {group.lower()}s")
    headers = [_arm_header(a, arms, group) for a in arms] + [smd]
    out = table.astype(str).set_axis(headers, axis=1)
    out.insert(0, "Characteristic", [_row_label(str(i)) for i in table.index])
    return out.reset_index(drop=True)


def baseline_csv(table: pd.DataFrame, group: str = "Arm") -> str:
    """The table as CSV text (UTF-8, comma separated, plain-word headers)."""
    return plain_baseline(table, group).to_csv(index=False, lineterminator="\n")


_CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                  '<Default Extension="xml" ContentType="application/xml"/>'
                  '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                  'officedocument.wordprocessingml.document.main+xml"/></Types>')
_RELATIONSHIPS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                  '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                  'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_RULE = '<w:{side} w:val="single" w:sz="8" w:space="0" w:color="000000"/>'


def _paragraph(text: str, bold: bool = False, right: bool = False, size: int = 20) -> str:
    align = '<w:jc w:val="right"/>' if right else ""
    props = f'<w:pPr><w:spacing w:before="0" w:after="0"/>{align}</w:pPr>'
    weight = "<w:b/>" if bold else ""
    run = f'<w:rPr>{weight}<w:sz w:val="{size}"/></w:rPr>'
    return f'<w:p>{props}<w:r>{run}<w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'


def _cell(text: str, *, bold: bool = False, right: bool = False, top: bool = False, bottom: bool = False) -> str:
    borders = "".join(_RULE.format(side=side) for side, on in (("top", top), ("bottom", bottom)) if on)
    props = f"<w:tcPr><w:tcBorders>{borders}</w:tcBorders></w:tcPr>" if borders else ""
    return f"<w:tc>{props}{_paragraph(text, bold=bold, right=right)}</w:tc>"


def baseline_docx(table: pd.DataFrame, title: str = "Baseline characteristics by arm", note: str = "",
                  group: str = "Arm") -> bytes:
    """The table as a Word document (.docx bytes): a title, the table (the header row repeats on each page)
    and an optional note below it."""
    plain = plain_baseline(table, group)
    n_rows = len(plain)
    rows = ["<w:tr><w:trPr><w:tblHeader/></w:trPr>"
            + "".join(_cell(str(h), bold=True, right=i > 0, top=True, bottom=True) for i, h in enumerate(plain.columns))
            + "</w:tr>"]
    for r, values in enumerate(plain.itertuples(index=False)):
        last = r == n_rows - 1
        rows.append("<w:tr>" + "".join(_cell(str(v), right=i > 0, bottom=last) for i, v in enumerate(values))
                    + "</w:tr>")
    grid = "".join('<w:gridCol w:w="2400"/>' if i == 0 else '<w:gridCol w:w="1700"/>' for i in range(plain.shape[1]))
    body = (_paragraph(title, bold=True, size=24)
            + f'<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/><w:tblLook w:val="0020"/></w:tblPr>'
            f"<w:tblGrid>{grid}</w:tblGrid>{''.join(rows)}</w:tbl>"
            + (_paragraph(note, size=18) if note else "")
            + '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/>'
            '<w:pgMar w:top="1134" w:right="1134" w:bottom="1134" w:left="1134" w:header="709" w:footer="709" '
            'w:gutter="0"/></w:sectPr>')
    document = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{_W}">'
                f"<w:body>{body}</w:body></w:document>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _RELATIONSHIPS),
                           ("word/document.xml", document)):
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), text.encode("utf-8"),
                             compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def docx_table(content: bytes) -> list[list[str]]:
    """The cells of the first table of a .docx, row by row (to check a document; every run of a cell joined).

    >>> t = pd.DataFrame({"arm = 0": ["8"], "arm = 1": ["8"], "SMD": [""]}, index=["n"])
    >>> docx_table(baseline_docx(t))
    [['Characteristic', 'Control', 'Treatment', 'Standardized mean difference'], ['Clusters (n)', '8', '8', '']]
    """
    import xml.etree.ElementTree as ET

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            root = ET.fromstring(archive.read("word/document.xml"))
    except (zipfile.BadZipFile, KeyError, ET.ParseError) as exc:
        raise ValueError(f"content: not a Word document with a body ({exc})") from None
    ns = {"w": _W}
    table = root.find(".//w:tbl", ns)
    if table is None:
        raise ValueError("content: the document has no table")
    return [["".join(t.text or "" for t in cell.iterfind(".//w:t", ns)) for cell in row.iterfind("w:tc", ns)]
            for row in table.iterfind("w:tr", ns)]


def save_baseline_table(folder: str | Path, table: pd.DataFrame, stem: str = "baseline_table",
                        note: str = "", group: str = "Arm") -> dict[str, Path]:
    """Write ``stem.csv`` and ``stem.docx`` into ``folder`` together (atomically; a file already there is
    refused, ``FileExistsError``, and nothing is written). Returns name -> path."""
    csv = baseline_csv(table, group)  # a bad table before any file
    docx = baseline_docx(table, note=note, group=group)
    files = FileSet(folder)
    files.check_free([f"{stem}.csv", f"{stem}.docx"])
    with files:
        files.add(f"{stem}.csv", csv)
        files.add(f"{stem}.docx", docx)
    return {f"{stem}.csv": Path(folder) / f"{stem}.csv", f"{stem}.docx": Path(folder) / f"{stem}.docx"}


__all__ = ["plain_baseline", "baseline_csv", "baseline_docx", "docx_table", "save_baseline_table"]

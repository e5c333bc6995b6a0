"""Data tables as spreadsheets export them, read with a report of every column that stayed text.

:func:`read_table` reads a CSV given as a path or as bytes (an upload): comma, semicolon or tab separated,
decimal point or decimal comma (a comma-separated file uses decimal points; a semicolon or tab file the mark its
numbers use, decimal commas for semicolons and points for tabs when undecided), UTF-8 (with or without BOM) or
Windows-1252 text. A column whose values are numbers except a few is not silently turned into text: it
stays text and the notes say which column and why, with a sample cell (a typo such as ``12..5``, decimal
points mixed with decimal commas, thousands separators), so that a covariate never drops out of a design
unnoticed.

>>> frame, notes = read_table(b"site,size,rate\\n1,10,0.5\\n2,1O,0.7\\n3,12,0.9\\n")
>>> [column for column in frame if pd.api.types.is_numeric_dtype(frame[column])]
['site', 'rate']
>>> notes
["column 'size' was read as text: 1 of 3 values is not a number (row 2: '1O')"]
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,. ]\d{3})+([.,]\d+)?$")
_SEPARATORS = [",", ";", "\t"]


def decode_text(content: bytes, name: str) -> str:
    """The text of a CSV file: UTF-8 (a BOM dropped) or Windows-1252; binary content is a ValueError."""
    if not content or not content.strip():
        raise ValueError(f"{name} is empty")
    if b"\x00" in content[:65536] or content[:2] == b"\x1f\x8b" or content[:4] == b"PK\x03\x04":
        raise ValueError(f"{name} is not a text CSV file (is it a spreadsheet or a compressed file? save it as CSV first)")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:  # spreadsheets on Windows often save CSV as cp1252 / latin-1 text
            return content.decode("cp1252")
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not a text CSV file (is it a spreadsheet? save it as CSV first)") from None


def read_table(source: str | Path | bytes, name: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read a CSV (a path, or the bytes of an upload) and say which columns were read as text and why.

    Returns (the data, notes): one note per column that holds numbers but also cells that are not (the
    first such cell quoted with its row), or numbers written two ways (decimal points and decimal commas,
    thousands separators). Those columns stay text, as they are in the file; nothing is guessed.
    Problems with the file itself (missing, a folder, empty, binary, not CSV) are ValueErrors naming it.
    """
    if isinstance(source, (bytes, bytearray)):
        content, name = bytes(source), name or "the file"
    else:
        path = Path(source)
        name = name or str(path)
        if not path.exists():
            raise FileNotFoundError(f"no such file {path}")
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a CSV file")
        content = path.read_bytes()
    text = decode_text(content, name)
    header = text.splitlines()[0]
    # the separator that splits the header most (a European spreadsheet writes ';', some exports a tab)
    sep = max(_SEPARATORS, key=header.count)
    try:
        raw = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{name} could not be read as CSV: {exc}") from None
    decimal = _decimal_mark(raw, sep)
    frame = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal)
    notes = [note for column in raw.columns
             if not pd.api.types.is_numeric_dtype(frame[column])
             and (note := _text_column_note(column, raw[column], decimal))]
    return frame, notes


def _decimal_mark(raw: pd.DataFrame, sep: str) -> str:
    """The decimal mark of a file's numbers: always "." with comma separators; with semicolons (decimal commas by
    convention) or tabs (decimal points by convention), the other mark when the cells use only it. A cell such
    as 1.500 or 1,500 could hold a thousands separator, so it decides nothing."""
    if sep == ",":
        return "."
    cells = pd.Series(raw.to_numpy().ravel(), dtype=str).str.strip()
    points = cells.str.match(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$") & ~cells.str.match(r"^[+-]?\d{1,3}\.\d{3}$")
    commas = cells.str.match(_DECIMAL_COMMA) & ~cells.str.match(r"^[+-]?\d{1,3},\d{3}$")
    if sep == ";":
        return "." if points.any() and not cells.str.match(_DECIMAL_COMMA).any() else ","
    return "," if commas.any() and not cells.str.match(r"^[+-]?\d*\.\d+").any() else "."


def _text_column_note(column, values: pd.Series, decimal: str) -> str:
    """Why a column of mostly numbers was read as text ("" when it is simply a text column)."""
    cells = values.str.strip()
    present = cells[(cells != "") & ~cells.str.upper().isin(["NA", "NAN", "N/A", "NULL", "#N/A", "-"])]
    if present.empty:
        return ""
    integer = present.str.match(r"^[+-]?\d+$")
    point = present.str.match(_NUMBER) & present.str.contains(".", regex=False)
    comma = present.str.match(_DECIMAL_COMMA)
    thousands = present.str.match(_THOUSANDS) & ~(integer | point | comma)
    numeric_like = integer | point | comma | thousands | present.str.match(_NUMBER)
    if numeric_like.mean() < 0.5:  # a text column (names, categories): nothing to report
        return ""
    said = f"column {column!r} was read as text: "
    if point.any() and comma.any():
        return said + f"it mixes decimal points ({_cell(present, point)}) and decimal commas ({_cell(present, comma)})"
    if decimal == "." and comma.any():
        return said + (f"decimal commas or thousands separators in a file read with decimal points "
                       f"({_cell(present, comma)}); save it with semicolons as separators, or the numbers with "
                       "decimal points")
    if decimal == "," and point.any():
        return said + f"decimal points in a file that uses decimal commas ({_cell(present, point)})"
    if thousands.any():
        return said + f"thousands separators ({_cell(present, thousands)}); save the numbers without them"
    bad = ~numeric_like
    if bad.any():
        return said + (f"{int(bad.sum()):,} of {len(present):,} values {'is' if bad.sum() == 1 else 'are'} not a "
                       f"number ({_cell(present, bad)})")
    return said + f"its numbers are not all written the same way ({_cell(present, present == present.iloc[0])})"


def _cell(values: pd.Series, mask: pd.Series) -> str:
    """The first cell of ``values`` where ``mask`` holds, with its data row (1 = the first under the header)."""
    position = int(np.flatnonzero(mask.to_numpy())[0])
    return f"row {values.index[position] + 1}: {values.iloc[position]!r}"

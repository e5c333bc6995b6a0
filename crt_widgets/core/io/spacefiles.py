"""Saved randomization spaces: cvcrand's CSV, our self-describing JSON, and the multi-arm CSV.

cvcrand's CSV: a header ``"SchemeChosen","",...``, then one row per scheme: the chosen-scheme
indicator, then one 0/1 column per cluster (in sorted cluster id order). R's ``cptest`` reads ours and
we read theirs. Written and read as one block of bytes built with numpy (a 1M-scheme file in well under
a second), never row by row.

Our JSON (``.json``, or ``.json.gz`` compressed) also keeps the cluster ids, each scheme's score, the
design parameters, the seed, the package version, the time and a hash of the input data. Format version 2
stores the schemes as packed bits (the :class:`SchemeSet` layout: ``ceil(n_clusters / 8)`` bytes per scheme,
cluster ``j`` is bit ``j % 8`` of byte ``j // 8``) in base64, with their count and SHA-256, and the scores as
float64 bytes in base64, byte planes first (all first bytes, then all second bytes, ...: the "shuffle"
filter of Blosc, Alted 2010, which lets gzip find the repeated exponent bytes)::

    {"format": "crt-widgets/space", "format_version": 2, "n_clusters": 26, "n_schemes": 1040060,
     "cluster_ids": [...], "chosen": 17, "parameters": {...}, ...,
     "schemes_encoding": "packed-bits-little/base64", "schemes_sha256": "...", "schemes": "AQID...",
     "scores_encoding": "float64-le-byte-planes/base64", "scores": "..."}

Version 1 (schemes as "0110..." strings, scores as numbers) is still read. A JSON space whose stored
scheme count or checksum disagrees with its schemes is refused; a space with an audit record beside it is
checked against it too (:mod:`crt_widgets.core.io.audits`).

>>> from crt_widgets.datasets import dickinson_cvcrand_space_path
>>> space = read_space(dickinson_cvcrand_space_path())
>>> len(space.schemes), space.chosen
(1287, 927)
"""
from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import json
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np
import pandas as pd

from crt_widgets.core.io.audits import check_space_file
from crt_widgets.core.io.files import from_chunks, json_ready, write_file
from crt_widgets.core.spaces.multiarm import SavedMultiArmSpace
from crt_widgets.core.spaces.saved import SavedSpace
from crt_widgets.core.spaces.schemes import CHUNK_ROWS, SchemeSet

FORMAT = "crt-widgets/space"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
SCHEMES_ENCODING = "packed-bits-little/base64"
SCORES_ENCODING = "float64-le-byte-planes/base64"
GZIP_LEVEL = 6  # zlib's default: level 9 takes longer for the same size on packed bits (near random)
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_COMMA, _NEWLINE, _ZERO = ord(","), ord("\n"), ord("0")


# -- cvcrand's CSV ----------------------------------------------------------------------------------------
def cvcrand_csv_chunks(schemes: SchemeSet, chosen: int, cluster_ids: Any = None,
                       rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """The bytes of cvcrand's CSV, in blocks of at most ``rows`` schemes (the header first).

    Each block is one uint8 array of '0'/'1' digits, commas and newlines, filled column-wise by numpy.

    >>> b"".join(cvcrand_csv_chunks(SchemeSet.from_matrix(np.array([[1, 0], [0, 1]])), 1))
    b'"SchemeChosen","",""\\n0,1,0\\n1,0,1\\n'
    """
    order = None if cluster_ids is None else cvcrand_column_order(cluster_ids)
    n = schemes.n_clusters
    yield (",".join(['"SchemeChosen"'] + ['""'] * n) + "\n").encode("ascii")
    for start in range(0, len(schemes), rows):
        m = schemes.matrix(slice(start, start + rows))
        block = np.empty((len(m), 2 * (n + 1)), dtype=np.uint8)
        block[:, 0] = _ZERO
        if start <= chosen < start + len(m):
            block[chosen - start, 0] = _ZERO + 1
        block[:, 2::2] = (m if order is None else m[:, order]) + _ZERO
        block[:, 1:-1:2] = _COMMA
        block[:, -1] = _NEWLINE
        yield block.tobytes()


def write_cvcrand_csv(path: str | Path | TextIO | BinaryIO, schemes: SchemeSet, chosen: int,
                      cluster_ids: Any = None, *, overwrite: bool = False) -> str | Path | TextIO | BinaryIO:
    """Write a space in cvcrand's exact CSV format, to a path (atomically, never over an existing file
    unless ``overwrite``) or an open stream (text or binary).

    The file has no cluster labels: cptest (and :func:`resolve_space`) take its columns to be the
    clusters in sorted id order. Given ``cluster_ids`` (the schemes' column labels), the columns are
    written in that order, so the file reads back right whatever the order of the design's rows.
    """
    return _write_chunks(path, cvcrand_csv_chunks(schemes, chosen, cluster_ids), overwrite)


def _write_chunks(path, chunks, overwrite: bool):
    """Write encoded chunks to a path (atomically, through :func:`write_file`) or to an open text or binary
    stream (UTF-8, of which the cvcrand CSV's ASCII is a part); returns what ``path`` was."""
    if not isinstance(path, (str, Path)):
        text = isinstance(path, io.TextIOBase) or "b" not in getattr(path, "mode", "b")
        for chunk in chunks:
            path.write(chunk.decode("utf-8") if text else chunk)
        return path
    return write_file(path, from_chunks(chunks), overwrite=overwrite)


def cvcrand_column_order(cluster_ids: Any) -> np.ndarray:
    """Positions of the clusters in sorted id order: the order of a cvcrand CSV's columns.

    >>> cvcrand_column_order([13, 1, 7]).tolist()
    [1, 2, 0]
    """
    return np.argsort(np.asarray(cluster_ids), kind="stable")


def read_cvcrand_csv(path: str | Path, *, audit: str | Path | dict | None = None, raw: bytes | None = None) -> SavedSpace:
    """Read cvcrand's CSV (first column: the chosen-scheme indicator), checked against its audit record
    when there is one (see :mod:`crt_widgets.core.io.audits`)."""
    path = Path(path)
    raw = path.read_bytes() if raw is None else raw
    digits = _cvcrand_digits(raw, path.name)
    _, notes = check_space_file(path, hashlib.sha256(raw).hexdigest(), len(digits), csv=True, audit=audit)
    chosen = _one_chosen(digits[:, 0], path.name)
    packed = np.packbits(digits[:, 1:], axis=1, bitorder="little")
    return SavedSpace(SchemeSet(packed, digits.shape[1] - 1), chosen, notes=tuple(notes))


def _cvcrand_digits(raw: bytes, name: str) -> np.ndarray:
    """The (schemes, 1 + clusters) 0/1 matrix of a cvcrand CSV; a ValueError naming the file otherwise.

    The file is one block of fixed-width lines ('d,d,...,d\\n'), so it is read as a numpy array and
    checked as one; anything else (spaces, quotes, other numbers) goes to pandas' parser for its message.
    """
    body = raw[len(_BOM):] if raw.startswith(_BOM) else raw
    _check_text(body, name)
    if b"\r" in body:  # written on Windows
        body = body.replace(b"\r\n", b"\n")
    end = body.find(b"\n")
    header = body if end < 0 else body[:end]
    rows = b"" if end < 0 else body[end + 1:]
    if header.split(b",", 3)[:3] == [b"scheme", b"chosen", b"score"]:
        raise ValueError(f"space file {name}: a multi-arm space (arm labels per cluster); the permutation "
                         "test compares two groups: say which (a factor's main effect, or arms against the "
                         "rest; read_multiarm_space(path).two_arm(...), or analyze --factor / --treated-arms)")
    n_columns = header.count(b",") + 1
    width = 2 * n_columns
    if n_columns >= 3 and rows:
        complete = rows if rows.endswith(b"\n") else rows + b"\n"
        if len(complete) % width == 0:
            table = np.frombuffer(complete, dtype=np.uint8).reshape(-1, width)
            digits = table[:, 0::2] - np.uint8(_ZERO)
            if ((table[:, 1:-1:2] == _COMMA).all() and (table[:, -1] == _NEWLINE).all()
                    and (digits <= 1).all()):
                return digits
        last = rows.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if not rows.endswith(b"\n") and 0 < len(last) < width - 1 and last.count(b",") < n_columns - 1:
            raise ValueError(f"space file {name}: the last line is cut short ({last.count(b',') + 1} of "
                             f"{n_columns} entries): the file is truncated; use the file as the design saved it")
    return _cvcrand_digits_by_pandas(body, name)


def _cvcrand_digits_by_pandas(body: bytes, name: str) -> np.ndarray:
    """A CSV that is not in cvcrand's exact layout (spaces, quotes, ...), through pandas' parser."""
    try:
        frame = pd.read_csv(io.BytesIO(body), header=0)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"space file {name}: not a readable CSV ({exc})") from None
    if frame.shape[1] < 3 or len(frame) < 1:
        raise ValueError(f"space file {name}: expected a chosen-scheme column and at least 2 "
                         f"cluster columns, got {frame.shape[1]} column(s) and {len(frame)} row(s)")
    values = frame.to_numpy()
    if pd.isna(values).any() or not np.isin(values, (0, 1)).all():
        raise ValueError(f"space file {name}: every entry must be 0 or 1")
    return values.astype(np.uint8)


def _check_text(body: bytes, name: str) -> None:
    """A CSV space is plain ASCII text: anything else is a message, not a parser's traceback."""
    if body.startswith(_GZIP_MAGIC):
        raise ValueError(f"space file {name}: a gzip-compressed file, not a CSV (is it a .json.gz space "
                         "renamed?)")
    sample = np.frombuffer(body, dtype=np.uint8)
    if ((sample == 0) | (sample > 127)).any():
        raise ValueError(f"space file {name}: not a text CSV (it holds binary bytes); give the space file "
                         "the design saved (cvcrand's CSV or our JSON)")


def _one_chosen(flags: np.ndarray, name: str) -> int:
    chosen = np.flatnonzero(flags == 1)
    if len(chosen) == 0:
        raise ValueError(f"space file {name}: no scheme is marked as chosen in the first column")
    if len(chosen) > 1:
        raise ValueError(f"space file {name}: {len(chosen)} schemes are marked as chosen; expected one")
    return int(chosen[0])


# -- our JSON -------------------------------------------------------------------------------------------
def schemes_sha256(schemes: SchemeSet) -> str:
    """SHA-256 of the packed bits (the checksum a version-2 JSON space keeps of its schemes)."""
    return hashlib.sha256(np.ascontiguousarray(schemes.packed).tobytes()).hexdigest()


def space_json_bytes(schemes: SchemeSet, chosen: int, cluster_ids: Any, scores: np.ndarray | None = None,
                     *, compress: bool = True, **metadata: Any) -> bytes:
    """The bytes of a version-2 JSON space (gzip-compressed unless ``compress=False``).

    >>> raw = space_json_bytes(SchemeSet.from_matrix(np.array([[1, 0, 1], [0, 1, 1]])), 0, ["a", "b", "c"],
    ...                        compress=False)
    >>> doc = json.loads(raw)
    >>> doc["format_version"], doc["n_schemes"], doc["schemes"]
    (2, 2, 'BQY=')
    """
    from crt_widgets import __version__

    packed = np.ascontiguousarray(schemes.packed, dtype=np.uint8)
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "n_clusters": schemes.n_clusters,
        "n_schemes": len(schemes),
        "cluster_ids": json_ready(np.asarray(cluster_ids)),
        "chosen": int(chosen),
        **json_ready(metadata),
        "schemes_encoding": SCHEMES_ENCODING,
        "schemes_sha256": hashlib.sha256(packed.tobytes()).hexdigest(),
        "schemes": base64.b64encode(packed.tobytes()).decode("ascii"),
        "scores_encoding": SCORES_ENCODING,
        "scores": None if scores is None else base64.b64encode(_byte_planes(np.asarray(scores))).decode("ascii"),
    }
    text = json.dumps(doc, indent=None, separators=(",", ":")).encode("utf-8")
    return gzip_members(text) if compress else text


def gzip_members(data: bytes, piece: int = 1 << 22) -> bytes:
    """gzip of ``data`` as consecutive members of at most ``piece`` bytes each, compressed in parallel
    threads (zlib releases the GIL), as pigz does; any gzip reader (Python, R's gzfile, zcat) reads the
    members as one stream. ``mtime=0`` so the same space always gives the same bytes.

    >>> gzip.decompress(gzip_members(b"abc" * 10, piece=7)) == b"abc" * 10
    True
    """
    from concurrent.futures import ThreadPoolExecutor

    pieces = [data[i: i + piece] for i in range(0, len(data), piece)] or [b""]
    compress = lambda part: gzip.compress(part, compresslevel=GZIP_LEVEL, mtime=0)  # noqa: E731
    if len(pieces) == 1:
        return compress(pieces[0])
    with ThreadPoolExecutor(max_workers=min(len(pieces), os.cpu_count() or 1)) as pool:
        return b"".join(pool.map(compress, pieces))


def _byte_planes(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f8").view(np.uint8).reshape(-1, 8).T.tobytes()


def _from_byte_planes(raw: bytes, count: int) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8).reshape(8, count).T.copy().view("<f8").ravel()


def write_space_json(path: str | Path, schemes: SchemeSet, chosen: int, cluster_ids: Any,
                     scores: np.ndarray | None = None, *, overwrite: bool = False, **metadata: Any) -> Path:
    """Write a space in our self-describing JSON format (gzip-compressed when the name ends in .gz),
    atomically, never over an existing file unless ``overwrite``."""
    path = Path(path)
    raw = space_json_bytes(schemes, chosen, cluster_ids, scores, compress=path.suffix == ".gz", **metadata)
    return write_file(path, raw, overwrite=overwrite)


def read_space_json(path: str | Path, *, audit: str | Path | dict | None = None, raw: bytes | None = None) -> SavedSpace:
    """Read our JSON format (version 1 or 2), checked against its own scheme count and checksum and
    against its audit record when there is one."""
    path = Path(path)
    raw = path.read_bytes() if raw is None else raw
    doc = _json_document(raw, path.name)
    version = doc.get("format_version", 1)
    if version not in READ_VERSIONS:
        raise ValueError(f"space file {path.name}: format version {version} is newer than this package reads "
                         f"({', '.join(map(str, READ_VERSIONS))}); update crt-widgets")
    try:
        n = int(doc["n_clusters"])
        stated = int(doc["n_schemes"])
        schemes = _schemes_v2(doc, n, stated, path.name) if version == 2 else _schemes_v1(doc, n, path.name)
        chosen = int(doc["chosen"])
        ids = np.asarray(doc["cluster_ids"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"space file {path.name}: a required entry is missing or malformed ({exc})") from None
    _check_count(stated, len(schemes), path.name)
    if not 0 <= chosen < len(schemes):
        raise ValueError(f"space file {path.name}: chosen scheme {chosen} is out of range")
    scores = _scores(doc, version, len(schemes), path.name)
    _, notes = check_space_file(path, hashlib.sha256(raw).hexdigest(), len(schemes), csv=False, audit=audit)
    meta = {k: v for k, v in doc.items() if k not in {"schemes", "scores", "cluster_ids", "chosen"}}
    return SavedSpace(schemes, chosen, ids, scores, meta, notes=tuple(notes))


def _json_document(raw: bytes, name: str) -> dict:
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"space file {name}: the compressed file is cut short or damaged ({exc}); "
                             "use the file as the design saved it") from None
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"space file {name}: not a readable JSON space ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"space file {name}: not a crt-widgets space (missing format {FORMAT!r})")
    return doc


def _check_count(stated: int, held: int, name: str) -> None:
    if held != stated:
        raise ValueError(f"space file {name}: it says {stated:,} schemes but holds {held:,}: "
                         "the file was edited or damaged; refusing to use it")


def _schemes_v1(doc: dict, n: int, name: str) -> SchemeSet:
    rows = doc["schemes"]
    if any(len(r) != n for r in rows):
        raise ValueError(f"space file {name}: every scheme must have {n} entries")
    matrix = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), n) - ord("0")
    return SchemeSet.from_matrix(matrix)


def _schemes_v2(doc: dict, n: int, stated: int, name: str) -> SchemeSet:
    if doc.get("schemes_encoding") != SCHEMES_ENCODING:
        raise ValueError(f"space file {name}: unknown schemes encoding {doc.get('schemes_encoding')!r}")
    try:
        packed = base64.b64decode(doc["schemes"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"space file {name}: the schemes are damaged ({exc})") from None
    width = math.ceil(n / 8)
    if width == 0 or len(packed) % width:
        raise ValueError(f"space file {name}: the schemes are damaged ({len(packed)} bytes is not a whole "
                         f"number of {width}-byte schemes)")
    _check_count(stated, len(packed) // width, name)
    if hashlib.sha256(packed).hexdigest() != doc.get("schemes_sha256"):
        raise ValueError(f"space file {name}: the schemes do not match their stored checksum: the file was "
                         "edited or damaged; refusing to use it")
    return SchemeSet(np.frombuffer(packed, dtype=np.uint8).reshape(-1, width).copy(), n)


def _scores(doc: dict, version: int, count: int, name: str) -> np.ndarray | None:
    if doc.get("scores") is None:
        return None
    if version == 1:
        scores = np.asarray(doc["scores"], dtype=float)
    else:
        try:
            raw = base64.b64decode(doc["scores"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"space file {name}: the scores are damaged ({exc})") from None
        if len(raw) != 8 * count:
            raise ValueError(f"space file {name}: {len(raw) // 8:,} scores for {count:,} schemes")
        scores = _from_byte_planes(raw, count)
    if len(scores) != count:
        raise ValueError(f"space file {name}: {len(scores):,} scores for {count:,} schemes")
    return scores


def read_space(path: str | Path, *, audit: str | Path | dict | None = None) -> SavedSpace:
    """Read a saved space, cvcrand's CSV or our JSON (by its content), verified against the audit record
    beside it (or ``audit``): see :mod:`crt_widgets.core.io.audits`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"space file not found: {path}")
    if path.is_dir():
        raise ValueError(f"space file {path}: a folder, not a file (give the space file inside it)")
    raw = path.read_bytes()
    if path.suffix in {".json", ".gz"} or raw.startswith(_GZIP_MAGIC) or raw.lstrip(_BOM).lstrip()[:1] == b"{":
        return read_space_json(path, audit=audit, raw=raw)
    return read_cvcrand_csv(path, audit=audit, raw=raw)


# cvcrand's own name, for users porting scripts
read_cvcrand_space = read_cvcrand_csv


# -- the multi-arm CSV ----------------------------------------------------------------------------------
def arm_space_chunks(unit_ids: Sequence, space: np.ndarray, arm_labels: Sequence[str], chosen: int,
                     scores: np.ndarray | None = None, rows: int = 1 << 16) -> Iterator[bytes]:
    """The bytes of a K-arm space CSV, in blocks of at most ``rows`` allocations (the header first).

    Each row is its prefix (``scheme,chosen,score,``, placed column by column) followed by one token per
    unit from a small vocabulary (each arm label with its comma, or its newline for the last unit): the
    block is one gather of bytes from the prefixes and the vocabulary, never a loop over rows.

    >>> b"".join(arm_space_chunks(["u1", "u2"], np.array([[0, 1], [1, 0]]), ["a", "b,c"], 1, np.array([0.5, 2.0])))
    b'scheme,chosen,score,u1,u2\\n1,0,5.000000000e-01,a,"b,c"\\n2,1,2.000000000e+00,"b,c",a\\n'
    """
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(["scheme", "chosen", "score", *map(str, unit_ids)])
    yield header.getvalue().encode("utf-8")
    space = np.asarray(space)
    n_units = space.shape[1] if space.ndim == 2 else 0
    fields = [_csv_field(str(a)).encode("utf-8") for a in arm_labels]
    vocabulary = [f + b"," for f in fields] + [f + b"\n" for f in fields]  # last unit: its newline
    vocab_bytes = np.frombuffer(b"".join(vocabulary), dtype=np.uint8)
    vocab_length = np.array([len(v) for v in vocabulary], dtype=np.int64)
    vocab_start = np.cumsum(vocab_length) - vocab_length
    last = np.zeros(max(n_units, 1), dtype=np.int64)
    last[-1] = len(fields)
    for start in range(0, len(space), rows):
        block = space[start: start + rows]
        count = len(block)
        prefix, prefix_length = _join_rows([
            _integers(np.arange(start + 1, start + count + 1)),
            _integers((np.arange(start, start + count) == chosen).astype(np.int64)),
            _scientific(None if scores is None else np.asarray(scores, dtype=float)[start: start + count], count)])
        if not n_units:
            yield prefix.tobytes()
            continue
        prefix[np.cumsum(prefix_length) - 1] = _COMMA  # the units follow
        token = block.astype(np.int64) + last[None, :]
        starts = np.column_stack([np.cumsum(prefix_length) - prefix_length, len(prefix) + vocab_start[token]])
        lengths = np.column_stack([prefix_length, vocab_length[token]])
        yield _gather(np.concatenate([prefix, vocab_bytes]), starts.ravel(), lengths.ravel()).tobytes()


def _gather(source: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The pieces ``source[starts[i]: starts[i] + lengths[i]]`` (every length at least 1) one after another,
    in one gather: the source positions step by one inside a piece and jump between pieces, so they are
    the running sum of a steps array."""
    ends = np.cumsum(lengths)
    steps = np.ones(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    if not len(steps):
        return source[:0]
    steps[0] = starts[0]
    steps[ends[:-1]] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return source[np.cumsum(steps)]


def write_arm_space(path, unit_ids: Sequence, space: np.ndarray, arm_labels: Sequence[str],
                    chosen: int, scores: np.ndarray | None = None, *, overwrite: bool = False):
    """Write a K-arm space as CSV (to a path, atomically, or an open text or binary stream):
    ``scheme,chosen,score,<unit ids...>``, one row per allocation, arm labels in the unit columns (``score``
    with 10 significant digits, empty when the design has none)."""
    return _write_chunks(path, arm_space_chunks(unit_ids, space, arm_labels, chosen, scores), overwrite)


def _csv_field(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n\r') else text


def _cell_table(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A few texts as a (k, width) byte matrix and their lengths (for :func:`_join_rows`)."""
    encoded = [t.encode("utf-8") for t in texts]
    width = max([len(e) for e in encoded] + [1])
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, :len(e)] = np.frombuffer(e, dtype=np.uint8)
    return table, np.array([len(e) for e in encoded], dtype=np.int64)


def _integers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative integers as decimal digits: a (n, width) byte matrix and the lengths."""
    values = np.asarray(values, dtype=np.int64)
    width = max(1, len(str(int(values.max())))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers) % 10
    lengths = np.maximum(1, np.floor(np.log10(np.maximum(values, 1))).astype(np.int64) + 1)
    # left-align: the significant digits first
    shift = width - lengths
    columns = np.arange(width)[None, :] + shift[:, None]
    table = (np.take_along_axis(digits, np.minimum(columns, width - 1), axis=1) + _ZERO).astype(np.uint8)
    return table, lengths


def _scientific(values: np.ndarray | None, count: int, digits: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Floats as ``d.ddddddddde+XX`` (``digits`` significant digits), ``0`` for zero, empty for NaN or no
    values; the rare value outside that form (negative, infinite, |exponent| >= 100) through Python's ``%g``."""
    width = digits + 5
    table = np.zeros((count, width), dtype=np.uint8)
    lengths = np.zeros(count, dtype=np.int64)
    if values is None:
        return table, lengths
    finite = np.isfinite(values) & (values > 0)
    exponent = np.zeros(count, dtype=np.int64)
    exponent[finite] = np.floor(np.log10(values[finite])).astype(np.int64)
    mantissa = np.zeros(count, dtype=np.int64)
    mantissa[finite] = np.rint(values[finite] / 10.0 ** (exponent[finite] - digits + 1)).astype(np.int64)
    carry = mantissa >= 10 ** digits  # 9.9999999996 rounds up to 10.00000000
    mantissa[carry] //= 10
    exponent[carry] += 1
    low = mantissa < 10 ** (digits - 1)  # log10 a hair below the true power of ten
    mantissa[low & finite] = np.rint(values[low & finite] / 10.0 ** (exponent[low & finite] - digits)).astype(np.int64)
    exponent[low & finite] -= 1
    regular = finite & (np.abs(exponent) < 100)
    mantissa_digits, _ = _integers(np.where(regular, mantissa, 10 ** (digits - 1)))
    table[:, 0] = mantissa_digits[:, 0]
    table[:, 1] = ord(".")
    table[:, 2:digits + 1] = mantissa_digits[:, 1:]
    table[:, digits + 1] = ord("e")
    table[:, digits + 2] = np.where(exponent < 0, ord("-"), ord("+"))
    magnitude = np.abs(exponent)
    table[:, digits + 3] = magnitude // 10 + _ZERO
    table[:, digits + 4] = magnitude % 10 + _ZERO
    lengths[regular] = width
    zero = values == 0  # a perfectly balanced allocation
    table[zero] = 0
    table[zero, 0] = _ZERO
    lengths[zero] = 1
    others = np.flatnonzero(~regular & ~zero & ~np.isnan(values))
    for i in others:  # negative, infinite or huge scores: none from a balance metric, a handful at most
        text = f"{values[i]:.{digits}g}".encode("ascii")[:width]
        table[i, :] = 0
        table[i, :len(text)] = np.frombuffer(text, dtype=np.uint8)
        lengths[i] = len(text)
    return table, lengths


def _join_rows(cells: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """CSV rows from columns of cells, each a (rows, width) byte matrix and the cells' lengths: commas
    between, a newline after, every byte placed by one masked scatter per column; also each row's length."""
    lengths = np.column_stack([length for _, length in cells])
    row_length = lengths.sum(axis=1) + len(cells)
    ends = np.cumsum(row_length)
    out = np.full(int(ends[-1]) if len(ends) else 0, _COMMA, dtype=np.uint8)
    if not len(ends):
        return out, row_length
    out[ends - 1] = _NEWLINE
    position = ends - row_length
    for j, (table, _) in enumerate(cells):
        length = lengths[:, j]
        width = table.shape[1]
        mask = np.arange(width)[None, :] < length[:, None]
        out[(position[:, None] + np.arange(width)[None, :])[mask]] = table[mask]
        position = position + length + 1
    return out, row_length


def read_multiarm_space(path: str | Path, *, audit: str | Path | dict | None = None) -> SavedMultiArmSpace:
    """Read a space written by :meth:`MultiArmAllocation.save_space` (checked against its audit record when
    there is one; a one-line notice when not). Our own layout (labels of at most 8 bytes, no quotes) is
    parsed with numpy from the bytes; anything else goes through pandas."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"space file not found: {path}")
    if path.is_dir():
        raise ValueError(f"space file {path}: a folder, not a file (give the space file inside it)")
    raw = path.read_bytes()
    body = raw[len(_BOM):] if raw.startswith(_BOM) else raw
    if body.startswith(_GZIP_MAGIC) or b"\x00" in body[:65536]:
        raise ValueError(f"space file {path.name}: not a text CSV (it holds binary bytes)")
    parsed = _multiarm_by_numpy(body)
    if parsed is None:
        unit_ids, labels, flags, scores = _multiarm_by_pandas(body, path)
    else:
        unit_ids, names, codes, flags, scores = parsed
    # the audit first: a file cut or edited since the save is refused as such, whatever else it breaks
    _, notes = check_space_file(path, hashlib.sha256(raw).hexdigest(), len(flags), csv=True, audit=audit)
    chosen = np.flatnonzero(flags == 1)
    if len(chosen) != 1:
        raise ValueError(f"space file {path.name}: expected exactly one chosen allocation, found {len(chosen)}")
    if parsed is None:
        return SavedMultiArmSpace(unit_ids, labels, int(chosen[0]), scores, notes=tuple(notes))
    return SavedMultiArmSpace.from_codes(unit_ids, names, codes, int(chosen[0]), scores, notes=tuple(notes))


def _multiarm_by_pandas(body: bytes, path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    try:
        table = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"space file {path.name}: not a readable CSV ({exc})") from None
    if list(table.columns[:3]) != ["scheme", "chosen", "score"]:
        raise ValueError(f"{path}: not a multi-arm space (expected columns scheme, chosen, score, units...)")
    if not body.rstrip(b"\r\n") or (not body.endswith(b"\n") and len(table)
                                    and (table.iloc[-1, 3:] == "").any()):
        raise ValueError(f"space file {path.name}: the last line is cut short: the file is truncated; use the "
                         "file as the design saved it")
    flags = pd.to_numeric(table["chosen"], errors="coerce").to_numpy()
    scores = pd.to_numeric(table["score"].replace("", np.nan)).to_numpy(dtype=float)
    return list(table.columns[3:]), table.iloc[:, 3:].to_numpy(), flags, scores


# _KEEP[L]: the low L bytes of a little-endian 8-byte word
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)


def _multiarm_by_numpy(body: bytes, rows_per_block: int = 1 << 15):
    """(unit ids, arm names, (S, n) codes into them, chosen flags, scores) of a multi-arm CSV in our own layout,
    from the bytes, block by block of rows (the work arrays stay small): the separators of a block found at
    once, each label read as one little-endian 8-byte word; None for any other layout."""
    end = body.find(b"\n")
    if end < 0:
        return None
    header = next(csv.reader([body[:end].decode("utf-8", "replace")]))
    rows = body[end + 1:]
    n_fields = len(header)
    if (header[:3] != ["scheme", "chosen", "score"] or n_fields < 4 or not rows or not rows.endswith(b"\n")
            or b'"' in rows or b"\r" in rows):
        return None
    data = np.frombuffer(rows, dtype=np.uint8)
    line_ends = np.flatnonzero(data == _NEWLINE)
    n_rows = len(line_ends)
    codes = np.empty((n_rows, n_fields - 3), dtype=np.int16)
    flags = np.empty(n_rows, dtype=np.int64)
    scores = np.empty(n_rows)
    known = np.zeros(0, dtype=np.uint64)  # the labels' words, in the order first seen (codes stay put)
    for first_row in range(0, n_rows, rows_per_block):
        last_row = min(first_row + rows_per_block, n_rows) - 1
        offset = 0 if first_row == 0 else int(line_ends[first_row - 1]) + 1
        block = np.concatenate([data[offset: int(line_ends[last_row]) + 1], np.zeros(32, dtype=np.uint8)])
        separators = np.flatnonzero((block == _COMMA) | (block == _NEWLINE))
        count = last_row - first_row + 1
        if len(separators) != count * n_fields:
            return None
        separators = separators.reshape(count, n_fields)
        if (block[separators[:, :-1]] == _NEWLINE).any():
            return None
        starts = np.empty_like(separators)
        starts[0, 0] = 0
        starts[1:, 0] = separators[:-1, -1] + 1
        starts[:, 1:] = separators[:, :-1] + 1
        lengths = separators - starts
        unit_starts, unit_lengths = starts[:, 3:], lengths[:, 3:]
        if unit_lengths.min() < 1 or unit_lengths.max() > 8:
            return None
        keys = np.zeros(unit_starts.shape, dtype=np.uint64)
        for k in range(int(unit_lengths.max())):  # byte k of every label of the block in one gather
            keys |= block[unit_starts + k].astype(np.uint64) << np.uint64(8 * k)
        keys &= _KEEP[unit_lengths]
        order = np.argsort(known)
        position = np.minimum(np.searchsorted(known[order], keys), max(len(known) - 1, 0))
        seen = known[order][position] == keys if len(known) else np.zeros(keys.shape, dtype=bool)
        if not seen.all():  # labels first met in this block join the list
            known = np.concatenate([known, np.setdiff1d(np.unique(keys[~seen]), known)])
            order = np.argsort(known)
            position = np.searchsorted(known[order], keys)
        codes[first_row: last_row + 1] = order[position]
        chosen = block[starts[:, 1]]
        if not ((lengths[:, 1] == 1) & ((chosen == _ZERO) | (chosen == _ZERO + 1))).all():
            return None
        flags[first_row: last_row + 1] = chosen == _ZERO + 1
        parsed = _floats(block, starts[:, 2], lengths[:, 2])
        if parsed is None:
            return None
        scores[first_row: last_row + 1] = parsed
    labels = [int(k).to_bytes(8, "little").rstrip(b"\x00").decode("utf-8", "replace") for k in known.tolist()]
    return header[3:], labels, codes, flags, scores


def _floats(padded: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """Numbers written as text at ``starts`` (empty: NaN), parsed by numpy's bytes-to-float cast."""
    width = int(lengths.max()) if len(lengths) else 0
    if width == 0:
        return np.full(len(starts), np.nan)
    if width > 24:
        return None
    cells = padded[starts[:, None] + np.arange(width)[None, :]]
    cells[np.arange(width)[None, :] >= lengths[:, None]] = 0
    text = cells.view(f"S{width}").ravel().copy()
    text[lengths == 0] = b"nan"
    try:
        return text.astype(float)
    except ValueError:
        return None

"""Files a trial keeps: written atomically and never over an existing file; hashes that tie a record to its
input; JSON records with numpy values made plain.

Every file the package writes goes through :func:`write_file` (one file) or :class:`FileSet` (several, the
audit record last). The bytes go to a temporary name in the destination folder, are flushed to the disk
(``fsync``) and only then take their final name, in one rename; so a save that fails or is interrupted
(Ctrl-C) leaves no file under a final name, and a file already there is refused unless ``overwrite=True``.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with FileSet(folder) as files:
...     written = files.add("allocation.csv", "cluster,arm\\n1,0\\n")
...     audit = files.add("audit.json", json.dumps({"allocation_sha256": written.sha256}))
>>> sorted(p.name for p in folder.iterdir())
['allocation.csv', 'audit.json']
>>> write_file(folder / "allocation.csv", "cluster,arm\\n1,1\\n")
Traceback (most recent call last):
...
FileExistsError: ...allocation.csv exists already: a file the trial produced is never overwritten (overwrite=True replaces it)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import pandas as pd

#: what a file is made of: text (UTF-8), bytes, or a function that writes bytes to an open binary file
Content = Union[str, bytes, Callable[[BinaryIO], None]]


@dataclass(frozen=True)
class Written:
    """A file staged or written: its final path, the SHA-256 and size of its bytes."""

    path: Path
    sha256: str
    size: int


class _HashingWriter:
    """A binary file that also hashes and counts what goes through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.hash, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        self.hash.update(view)
        self.size += len(view)
        return self.fh.write(view)


def existing_file_message(path: Path) -> str:
    """The one message for a final name that is taken."""
    return (f"{path} exists already: a file the trial produced is never overwritten "
            "(overwrite=True replaces it)")


class FileSet:
    """Several files saved together: each is written to a temporary name first (:meth:`add`), and all take
    their final names only at :meth:`commit`, in the order they were added (add the audit record last).

    Used as a context manager, it commits when the block ends normally and otherwise removes every
    temporary file, so nothing is left under a final name. Files that exist already are refused (a
    ``FileExistsError`` before anything is written) unless ``overwrite=True``.
    """

    def __init__(self, directory: str | Path, *, overwrite: bool = False) -> None:
        self.directory = Path(directory)
        self.overwrite = overwrite
        self._staged: list[tuple[Path, Path, Written]] = []  # (temporary, final, record)
        self._done = False
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"{self.directory} is a file, not a folder")
        self.directory.mkdir(parents=True, exist_ok=True)

    def check_free(self, names: Iterable[str]) -> None:
        """Refuse now (before any work) if one of ``names`` is taken and ``overwrite`` is off."""
        if self.overwrite:
            return
        taken = [self.directory / n for n in names if (self.directory / n).exists()]
        if taken:
            raise FileExistsError(existing_file_message(taken[0]))

    def add(self, name: str, content: Content) -> Written:
        """Write ``content`` under a temporary name; the final name is ``directory / name``."""
        final = self.directory / name
        self.check_free([name])
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".part")
        temporary = Path(temporary)
        try:
            with os.fdopen(handle, "wb") as fh:
                writer = _HashingWriter(fh)
                if callable(content):
                    content(writer)
                else:
                    writer.write(content.encode("utf-8") if isinstance(content, str) else content)
                fh.flush()
                # mkstemp makes the file private (0600); a saved file gets what open() would give it
                os.fchmod(fh.fileno(), 0o666 & ~_current_umask())
                os.fsync(fh.fileno())
        except BaseException:  # KeyboardInterrupt too: no partial file may stay behind
            temporary.unlink(missing_ok=True)
            raise
        record = Written(final, writer.hash.hexdigest(), writer.size)
        self._staged.append((temporary, final, record))
        return record

    def commit(self) -> dict[str, Path]:
        """Give every staged file its final name, in the order added; returns name -> path."""
        placed: list[Path] = []
        try:
            for temporary, final, _ in self._staged:
                _place(temporary, final, self.overwrite)
                placed.append(final)
        except BaseException:
            for final in placed:  # all or nothing: no audit without its files, no files without their audit
                final.unlink(missing_ok=True)
            self.discard()
            raise
        self._done = True
        _sync_directory(self.directory)
        return {final.name: final for _, final, _ in self._staged}

    def discard(self) -> None:
        """Remove the temporary files (nothing takes a final name)."""
        for temporary, _, _ in self._staged:
            temporary.unlink(missing_ok=True)
        self._staged = []
        self._done = True

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None and not self._done:
            self.commit()
        elif not self._done:
            self.discard()


def _current_umask() -> int:
    """The process's umask, read without changing it where Linux says it (/proc/self/status), else by setting
    and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def from_chunks(chunks: Iterable[bytes]) -> Callable[[BinaryIO], None]:
    """Content written block by block from an iterator of bytes (a large space never held whole)."""
    def write(fh: BinaryIO) -> None:
        for chunk in chunks:
            fh.write(chunk)
    return write


def _place(temporary: Path, final: Path, overwrite: bool) -> None:
    """Rename ``temporary`` to ``final`` in one step; refuse a taken name unless ``overwrite``."""
    if overwrite:
        os.replace(temporary, final)
        return
    try:  # a hard link fails if the name is taken, even if another process took it a moment ago
        os.link(temporary, final)
    except FileExistsError:
        temporary.unlink(missing_ok=True)
        raise FileExistsError(existing_file_message(final)) from None
    except OSError:  # a file system without hard links: check, then rename
        if final.exists():
            temporary.unlink(missing_ok=True)
            raise FileExistsError(existing_file_message(final)) from None
        os.replace(temporary, final)
        return
    temporary.unlink()


def _sync_directory(directory: Path) -> None:
    """Flush the folder's entries (the renames) to the disk, where the system allows it."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file(path: str | Path, content: Content, *, overwrite: bool = False) -> Path:
    """Write one file atomically (see :class:`FileSet`); an existing file is refused unless ``overwrite``."""
    path = Path(path)
    with FileSet(path.parent, overwrite=overwrite) as files:
        files.add(path.name, content)
    return path


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def data_sha256(data: pd.DataFrame) -> str:
    """SHA-256 of the cluster data as CSV (no index): ties an audit record to the data the design used
    (the input file's own bytes are hashed by :func:`file_sha256`).

    >>> data_sha256(pd.DataFrame({"x": [1, 2]}))[:12]
    'aea284871dde'
    """
    return hashlib.sha256(data.to_csv(index=False).encode()).hexdigest()


def json_text(record: dict) -> str:
    """An audit record as indented JSON text (numpy values made plain)."""
    return json.dumps(json_ready(record), indent=2)


def write_json_audit(path: str | Path, record: dict, *, overwrite: bool = False) -> Path:
    """Write an audit record as indented JSON (numpy values made plain), atomically."""
    return write_file(path, json_text(record), overwrite=overwrite)


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy arrays and scalars as Python ones, infinite limits as ``"inf"``/``"-inf"``
    (an interval can be open), NaN as null.

    >>> json_ready({"ci": np.array([0.5, np.inf]), "se": np.float64("nan")})
    {'ci': [0.5, 'inf'], 'se': None}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value

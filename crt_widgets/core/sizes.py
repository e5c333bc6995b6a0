"""Sizes checked before the work starts: the machine's memory, and counts too large to print.

A request whose arrays cannot fit in the memory this machine has available is refused at once, with
the figures, instead of running for minutes and failing deep inside numpy; a count of schemes with
thousands of digits is shown as a power of ten (Python refuses to print integers past 4,300 digits).

>>> format_count(12_870), format_count(__import__("math").comb(20_000, 10_000))
('12,870', 'about 2.2e6018')
>>> format_bytes(3.2e9)
'3.2 GB'
>>> check_memory(10**15, "size", "10,000,000,000 candidate allocations of 80 clusters")
Traceback (most recent call last):
...
ValueError: size: 10,000,000,000 candidate allocations of 80 clusters need about 1,000 TB of memory; ...
"""
from __future__ import annotations

import math
import os

# leave room for everything else the process holds (the data, the scores, copies numpy makes)
USABLE_SHARE = 0.8


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: ``MemAvailable`` of /proc/meminfo (Linux), else the
    free physical pages (``os.sysconf``); None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def fits_in_memory(needed: float) -> bool:
    """Whether ``needed`` bytes fit in the usable share of the available memory (True when unknown)."""
    available = available_memory()
    return available is None or needed <= USABLE_SHARE * available


def check_memory(needed: float, argument: str, what: str) -> None:
    """Refuse (a ValueError naming ``argument``) when ``needed`` bytes exceed the usable share of the
    memory available; ``what`` says what would take them."""
    if fits_in_memory(needed):
        return
    available = available_memory()
    raise ValueError(f"{argument}: {what} need about {format_bytes(needed)} of memory; this machine has "
                     f"{format_bytes(available)} available; ask for less")


def format_bytes(size: float) -> str:
    """Bytes in the unit that reads best (kB, MB, GB, TB; powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{int(size)} bytes"


def format_count(count: int) -> str:
    """A count with thousands separators, or as a power of ten when it has more than 60 digits."""
    count = int(count)
    if abs(count) < 10**60:
        return f"{count:,}"
    exponent = math.log10(count)
    return f"about {10 ** (exponent - math.floor(exponent)):.1f}e{math.floor(exponent)}"

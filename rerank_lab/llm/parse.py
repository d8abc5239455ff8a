"""Lenient permutation parsing: any model output becomes a valid permutation, and every
repair is counted (so a notebook can report how often the model broke the format).

Follows the repair rule of RankGPT (Sun et al., EMNLP 2023) and rank_llm: take the
identifiers in order of appearance, make them 0-based, drop duplicates and out-of-range
ones, then append the passages the model never mentioned in their input order.

Usage::

    parse_permutation("[2] > [1] > [2] > [9]", n=3)
    # Parsed(order=[1, 0, 2], repairs=Repairs(duplicates=1, out_of_range=1, missing=1))
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

ALPHA = string.ascii_uppercase

_NUMBER = re.compile(r"\d+")
_BRACKETED_ALPHA = re.compile(r"\[\s*([A-Za-z]{1,2})\s*\]")


@dataclass
class Repairs:
    """What had to be fixed to turn a model output into a permutation."""

    duplicates: int = 0     # identifiers seen more than once (later copies dropped)
    out_of_range: int = 0   # identifiers not naming a passage of the window
    missing: int = 0        # passages never mentioned (appended in input order)
    empty: int = 0          # 1 when no identifier at all could be read

    @property
    def total(self) -> int:
        return self.duplicates + self.out_of_range + self.missing + self.empty

    @property
    def any(self) -> bool:
        return self.total > 0

    def as_counters(self, prefix: str = "parse_") -> dict[str, int]:
        return {f"{prefix}{k}": v for k, v in vars(self).items()}


@dataclass
class Parsed:
    order: list[int]                       # 0-based passage indices, best first; a permutation of range(n)
    repairs: Repairs = field(default_factory=Repairs)


def extract_identifiers(text: str, alpha: bool = False) -> list[int]:
    """1-based identifiers in order of appearance (``[3]``, ``3``, ``passage 3``; ``[C]`` if alpha)."""
    if alpha:
        # only bracketed letters: bare capitals occur in ordinary prose ("A", "I")
        return [_alpha_value(m.group(1)) for m in _BRACKETED_ALPHA.finditer(text or "")]
    return [int(m.group()) for m in _NUMBER.finditer(text or "")]


def _alpha_value(label: str) -> int:
    value = 0
    for ch in label.upper():
        value = value * 26 + (ord(ch) - ord("A") + 1)
    return value


def alpha_label(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA" (1-based value 27)."""
    index += 1
    label = ""
    while index:
        index, rest = divmod(index - 1, 26)
        label = ALPHA[rest] + label
    return label


def repair_permutation(identifiers: list[int], n: int) -> Parsed:
    """1-based identifiers -> a 0-based permutation of ``range(n)`` with the repairs counted."""
    repairs = Repairs(empty=int(not identifiers and n > 0))
    seen: set[int] = set()
    order: list[int] = []
    for ident in identifiers:
        index = ident - 1
        if not 0 <= index < n:
            repairs.out_of_range += 1
        elif index in seen:
            repairs.duplicates += 1
        else:
            seen.add(index)
            order.append(index)
    missing = [i for i in range(n) if i not in seen]
    repairs.missing = len(missing)
    return Parsed(order + missing, repairs)


def parse_permutation(text: str | None, n: int, alpha: bool = False) -> Parsed:
    """Any text -> a permutation of ``range(n)`` plus the repairs made; never raises."""
    return repair_permutation(extract_identifiers(text or "", alpha=alpha), n)

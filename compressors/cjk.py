"""Scripts written without spaces between words, defined once: Han, kana, CJK symbols and
punctuation, full-width forms, and the CJK ideographs beyond the Basic Multilingual Plane (Extension
B onwards). Units cut their runs into words (units.py), whole-word matching does not apply inside
them (protection.py), and one ends a URL (structure.py). Hangul is written with spaces between
words, so a Korean word is a unit like a Latin one."""

from __future__ import annotations

import re

# A regex character-class body (no brackets): `[{CJK_CLASS}]` matches one such character.
CJK_CLASS = r"\u2e80-\u2fff\u3001-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0002fa1f"
CJK = re.compile(f"[{CJK_CLASS}]")


def is_cjk(ch: str) -> bool:
    """Whether the string starts with a character of a script written without spaces."""
    return bool(CJK.match(ch))

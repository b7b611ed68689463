"""Text that people will read as it was stored: no hidden or reordering characters.

A broadcast is written by one person and shown to every customer. Unicode lets
a string read differently from what it holds: bidi overrides and isolates
(U+202A-U+202E, U+2066-U+2069) reorder what is displayed (CVE-2021-42574,
"Trojan Source"), zero-width characters hide text or split words a filter
looks for, control characters drive terminals or are refused by PostgreSQL
(NUL), and U+2028/U+2029 break lines where a reader expects none.

The rule is boring on purpose, and refuses rather than rewrites (a silently
changed message is a message nobody wrote):

- allowed: every letter, mark, number, punctuation, symbol and space of any
  script (Unicode categories L*, M*, N*, P*, S*, Zs), plus ``\\n`` and ``\\t``;
- refused: every other control (Cc), every format character (Cf: bidi
  controls, zero-width space/joiners, the BOM, tag characters), the line and
  paragraph separators (Zl, Zp), surrogates (Cs: a lone one is not text),
  private-use (Co) and unassigned (Cn) code points;
- the text is then trimmed, and must not be blank.

In a pydantic model: ``Annotated[str, Field(max_length=N), PLAIN_TEXT]`` (the
length is that of the text as received, before trimming).
"""

from __future__ import annotations

import unicodedata

from pydantic import AfterValidator

__all__ = ["ALLOWED_CONTROLS", "PLAIN_TEXT", "plain_text"]

#: The only control characters allowed: line breaks and indentation. Not ``\r``: on
#: its own it overwrites a line in a terminal, and JSON clients send ``\n``.
ALLOWED_CONTROLS = frozenset("\n\t")
# Categories no character shown to people may have (see the module docstring).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def plain_text(value: str) -> str:
    """Refuse hidden or reordering characters, then trim; a ``ValueError`` names the first.

    The error names the code point (``U+202E``), never echoes the character: an
    error body must not carry what it refuses.
    """
    for position, char in enumerate(value):
        if char in ALLOWED_CONTROLS:
            continue
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES:
            raise ValueError(
                f"character U+{ord(char):04X} at position {position} is not allowed "
                f"(Unicode category {category}: control, format, separator or unassigned)"
            )
    trimmed = value.strip()
    if not trimmed:
        raise ValueError("must not be blank")
    return trimmed


#: ``plain_text`` as pydantic field metadata: a refused character is a 422 naming the field.
PLAIN_TEXT = AfterValidator(plain_text)

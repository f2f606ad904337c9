"""Identifiers and names that look like what they are: no look-alikes, no hidden characters.

"P-100", " P-100", "P-1\u200b00" and "ｐ-100" print alike; stored as typed they are four parts,
and a right-to-left override in a name makes a screen or a printed label say something else
than the record. These Pydantic annotated types put every such input into one form before a
service sees it, or refuse it with a 422 that names the field:

* NFKC normalisation (full-width and compatibility forms become their plain letters, a no-break
  space an ordinary one), then leading and trailing whitespace trimmed;
* refused: control characters (Unicode Cc, so tabs and newlines too), format characters (Cf: zero
  width space/joiner, byte order mark, bidirectional overrides and isolates), private use (Co),
  surrogates (Cs), and line/paragraph separators (Zl, Zp). The only space allowed is U+0020.

:data:`Identifier` keeps the letter case; :data:`UpperIdentifier` upper-cases (used for numbers
that are unique regardless of case, e.g. part numbers: "p-100" *is* P-100 and gets the 409 of a
duplicate); :data:`Name` is for human-readable names and titles.
"""
from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BeforeValidator

#: Unicode categories never accepted in an identifier or a name
REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible formatting character",
                      "Co": "a private-use character", "Cs": "a surrogate", "Zl": "a line separator",
                      "Zp": "a paragraph separator"}


def _hidden(value: str) -> str | None:
    """A description of the first character that must not be there, or None."""
    for char in value:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES or (category == "Zs" and char != " "):
            what = REFUSED_CATEGORIES.get(category, "a space other than U+0020")
            name = unicodedata.name(char, "")
            return f"U+{ord(char):04X}{f' {name}' if name else ''} ({what})"
    return None


def normalise(value: str) -> str:
    """NFKC, trimmed; ``ValueError`` for a hidden character (Pydantic reports it as a 422 on the field)."""
    text = unicodedata.normalize("NFKC", value)
    found = _hidden(text)
    if found:
        raise ValueError(f"contains {found}; identifiers and names take visible characters only")
    return text.strip(" ")


def _before(transform: Callable[[str], str]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        return transform(value) if isinstance(value, str) else value  # other types: Pydantic's str error
    return validate


#: an identifier (lot number, code, serial) as typed, in NFKC, trimmed, without hidden characters
Identifier = Annotated[str, BeforeValidator(_before(normalise))]
#: an identifier that is unique regardless of case, stored upper-case (part numbers)
UpperIdentifier = Annotated[str, BeforeValidator(_before(normalise)), AfterValidator(str.upper)]
#: a human-readable name or title (same rules: what is shown is what is stored)
Name = Annotated[str, BeforeValidator(_before(normalise))]

__all__ = ["Identifier", "Name", "REFUSED_CATEGORIES", "UpperIdentifier", "normalise"]

"""A count and its noun as people write them: "1 minute", "2 minutes", "1 box", "0 images" (never "1 minutes"
or "file(s)"). One function, used wherever a number meets a unit in what the inspector reads."""

from __future__ import annotations

_IRREGULAR = {"box": "boxes", "class": "classes", "match": "matches", "is": "are", "was": "were", "has": "have"}


def plural(noun: str) -> str:
    """The plural of a noun of this app's ('minute' → 'minutes', 'box' → 'boxes'; the last word of a phrase)."""
    head, _, last = noun.rpartition(" ")
    word = _IRREGULAR.get(last) or (last[:-1] + "ies" if last.endswith("y") and last[-2:-1] not in "aeiou"
                                    else last + "s")
    return f"{head} {word}" if head else word


def count(n: float, noun: str, many: str | None = None) -> str:
    """'1 minute', '2 minutes', '1.5 minutes', '0 images'; `many` for a plural `plural` can't make."""
    shown = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{shown} {noun if n == 1 else (many or plural(noun))}"

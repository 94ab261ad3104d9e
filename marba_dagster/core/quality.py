"""The one line a data-quality check reads as: what was checked, what is wrong, examples.

Pure logic. The stores count problems per kind over recent rows (``store.<domain>``); each
domain names its kinds in words (``PROBLEM_TEXT``) and how an example row is named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

# Rows named in a check's description (the examples in its metadata go further).
NAMED_EXAMPLES = 3


def describe_problems(
    checked: int,
    counts: Mapping[str, int],
    examples: Sequence[Mapping],
    *,
    noun: str,
    problem_text: Mapping[str, str],
    example_name: Callable[[Mapping], str],
    ok_word: str = "valid",
) -> str:
    """``"5 problem(s) in 11 inbox item(s): 2 with ..., 3 with ... (e.g. x/1, x/2)"``, or
    ``"11 inbox item(s) valid"`` when no kind counts any."""
    bad = {kind: n for kind, n in counts.items() if n}
    if not bad:
        return f"{checked} {noun}(s) {ok_word}"
    text = f"{sum(bad.values())} problem(s) in {checked} {noun}(s): " + ", ".join(
        f"{n} {problem_text[kind]}" for kind, n in bad.items()
    )
    named = list(dict.fromkeys(example_name(e) for e in examples))[:NAMED_EXAMPLES]
    return text + (f" (e.g. {', '.join(named)})" if named else "")

"""The data-quality asset checks' result: WARN, the counts and examples in metadata."""

from collections.abc import Callable, Mapping, Sequence

import dagster as dg

from marba_dagster.core.quality import describe_problems


def problems_result(
    checked: int,
    counts: Mapping[str, int],
    examples: Sequence[Mapping],
    *,
    noun: str,
    problem_text: Mapping[str, str],
    example_name: Callable[[Mapping], str],
    checked_key: str,
    ok_word: str = "valid",
) -> dg.AssetCheckResult:
    """A WARN check result (a quality problem never blocks the data downstream)."""
    return dg.AssetCheckResult(
        passed=not any(counts.values()),
        severity=dg.AssetCheckSeverity.WARN,
        description=describe_problems(
            checked,
            counts,
            examples,
            noun=noun,
            problem_text=problem_text,
            example_name=example_name,
            ok_word=ok_word,
        ),
        metadata={checked_key: checked, **counts, "examples": dg.MetadataValue.json(examples)},
    )

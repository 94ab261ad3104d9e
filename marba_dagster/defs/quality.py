"""The data-quality asset checks' result: WARN, the counts and examples in metadata."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from marba_dagster.core.quality import describe_problems


def problems_result(
    checked: int,
    counts: Mapping[str, int],
    examples: Sequence[Mapping],
    *,
    checked_key: str,
    **wording: Any,
) -> dg.AssetCheckResult:
    """A WARN check result (a quality problem never blocks the data downstream).

    ``wording``: ``noun``, ``problem_text``, ``example_name`` and optionally ``ok_word``, as
    :func:`core.quality.describe_problems` takes them."""
    return dg.AssetCheckResult(
        passed=not any(counts.values()),
        severity=dg.AssetCheckSeverity.WARN,
        description=describe_problems(checked, counts, examples, **wording),
        metadata={checked_key: checked, **counts, "examples": dg.MetadataValue.json(examples)},
    )

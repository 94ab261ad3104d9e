"""Helpers every MARBA asset uses: which brands a run covers, per-brand isolation, reporting.

A multi-brand run never lets one brand's failure stop the others: each brand's work runs in
its own transaction, failures are written to ``job_logs`` and the Dagster log, and the asset
ends with ``BrandBatch.finish()`` which raises ``dg.Failure`` naming the failed brands only
when the caller asks for strictness (brand-partitioned assets) or when every brand failed.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

import dagster as dg

from marba_dagster.connectors.describe import describe_error, one_line
from marba_dagster.connectors.redaction import redact, redact_json
from marba_dagster.core.catalog import job_for_group
from marba_dagster.core.rows import Problem
from marba_dagster.core.runs import BRANDS_CHECK, BRANDS_TAG, JOB_TAG, SOURCES_CHECK
from marba_dagster.core.shards import brand_range, in_shard
from marba_dagster.defs.execution import rate_limit_retry
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.brands import active_brand_ids, existing_brand_ids
from marba_dagster.store.jobs import write_job_log

T = TypeVar("T")

# How many failed brands or lost sources a check's metadata names (the count is exact).
NAMED_IN_CHECK = 50


# How many a check's description (the operator's one line) names before "and N more".
NAMED_IN_DESCRIPTION = 5


def _named(items: Sequence[str], total: int, sep: str = ", ") -> str:
    shown = sep.join(items[:NAMED_IN_DESCRIPTION])
    more = total - min(len(items), NAMED_IN_DESCRIPTION)
    return shown + (f" and {more} more" if more > 0 else "")


def completeness_check_specs(
    asset: str | dg.AssetKey, *, sources: bool = False
) -> list[dg.AssetCheckSpec]:
    """The ``all_brands_processed`` check (and ``sources_available`` for an asset that reads
    outside sources shared by many brands) for ``asset``'s ``check_specs``."""
    key = dg.AssetKey.from_coercible(asset)
    specs = [
        dg.AssetCheckSpec(
            BRANDS_CHECK,
            asset=key,
            blocking=False,
            description=(
                "Every brand of the run was processed; warns naming the brands that failed."
            ),
        )
    ]
    if sources:
        specs.append(
            dg.AssetCheckSpec(
                SOURCES_CHECK,
                asset=key,
                blocking=False,
                description="Every outside source answered; warns naming each source that was lost "
                "(unreachable, erroring or answering malformed data) and the brands it served.",
            )
        )
    return specs


@dataclass
class LostSource:
    """An outside source (or one request of it) that failed for a whole group of brands."""

    source: str
    error: str
    brands: set[str] = field(default_factory=set)


def job_name_for(context: dg.AssetExecutionContext) -> str:
    """The MARBA job a run belongs to (its tag, else the asset group's job)."""
    tag = context.run.tags.get(JOB_TAG)
    if tag:
        return tag
    for group in context.assets_def.group_names_by_key.values():
        spec = job_for_group(group)
        if spec:
            return spec.name
    return context.run.job_name


def requested_brands(context: dg.AssetExecutionContext) -> list[str] | None:
    raw = context.run.tags.get(BRANDS_TAG, "").strip()
    return [b.strip() for b in raw.split(",") if b.strip()] or None


def is_narrowed(context: dg.AssetExecutionContext) -> bool:
    """Whether the run covers some brands only (``marba/brands`` or a brand shard's range)."""
    return requested_brands(context) is not None or brand_range(context.run.tags) != (None, None)


def scoped_brand_ids(context: dg.AssetExecutionContext, marba_db: MarbaDatabase) -> list[str]:
    """The active brands this run covers: the ``marba/brands`` tag narrows, and so does a
    brand shard's id range (``marba/brands_from`` / ``marba/brands_before``, resolved against
    the brands active now: one activated since the tick is in exactly one shard); else all
    active brands.

    Unknown brand ids in the tag fail the run with a clear message before any work.
    """
    first, before = brand_range(context.run.tags)
    with marba_db.connect() as conn:
        requested = requested_brands(context)
        if requested:
            known = existing_brand_ids(conn, requested)
            unknown = [b for b in requested if b not in known]
            if unknown:
                raise dg.Failure(description=f"unknown brand(s): {', '.join(unknown)}")
            active = set(active_brand_ids(conn))
            brands = [b for b in requested if b in active]
        else:
            brands = active_brand_ids(conn)
    return [b for b in brands if in_shard(b, first, before)]


@dataclass
class BrandBatch:
    """Runs per-brand work in isolation and records what failed."""

    context: dg.AssetExecutionContext
    marba_db: MarbaDatabase
    job_name: str = ""
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    lost: dict[str, LostSource] = field(default_factory=dict)
    invalid_rows: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.job_name:
            self.job_name = job_name_for(self.context)

    @contextmanager
    def brand(self, brand_id: str) -> Iterator[None]:
        """``with batch.brand(b):`` around one brand's work: an exception ends that block
        only, recorded as the brand's failure (``job_logs``, the Dagster log, the run's
        ``all_brands_processed`` check) and not raised; a block that completes counts the
        brand as processed. Code after the block runs for every brand."""
        try:
            yield
        except Exception as exc:  # one brand's failure must not stop the others
            self.record_failure(brand_id, exc)
        else:
            self.succeeded.append(brand_id)

    def record_failure(self, brand_id: str, exc: BaseException | str) -> None:
        message = redact(exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}")
        self.failed[brand_id] = message
        self.context.log.error(f"brand {brand_id} failed: {message}")
        if not isinstance(exc, str):
            self.context.log.debug(redact("".join(traceback.format_exception(exc))))
        self.log(brand_id, "error", message)

    def log(self, brand_id: str | None, level: str, message: str, **ctx: Any) -> None:
        """A line in ``job_logs`` (the app's monitor reads it), without any credential the
        process has sent (``connectors.redaction.redact``)."""
        message = redact(message)
        ctx = redact_json(ctx)
        try:
            with self.marba_db.begin() as conn:
                write_job_log(
                    conn,
                    self.job_name,
                    level,
                    message,
                    run_id=self.context.run.run_id,
                    brand_id=brand_id,
                    context=ctx or None,
                )
        except Exception as exc:  # logging must never turn a success into a failure
            self.context.log.warning(f"could not write job_logs: {exc}")

    def row_problems(self, problems: Iterable[Problem]) -> None:
        """Report the app's rows that failed their check at the boundary (``core.rows``): a
        warning naming the brand, table and field in ``job_logs`` and the Dagster log, the
        count in the run's metadata, and ``all_brands_processed`` warns naming them. A brand
        row that was skipped whole counts as a failed brand."""
        for problem in problems:
            self.invalid_rows.append(problem)
            text = problem.text()
            self.context.log.warning(text)
            if problem.skips_row and problem.table == "brands":
                self.record_failure(problem.brand_id, text)
                continue
            self.log(
                problem.brand_id,
                "warning",
                text,
                table=problem.table,
                row_id=problem.row_id,
                field=problem.field,
                action=problem.action,
            )

    def finish(self, *, strict: bool = False, rate_limited: Sequence[Any] = ()) -> None:
        """Raise ``dg.Failure`` naming the failed brands if any failed and ``strict``, or if
        every brand failed.

        ``rate_limited``: the rate-limit errors the step's clients raised
        (``ApiClient.rate_limited()``). When there are any, the step's failure is not retried
        by the retry policy within seconds: ``execution.rate_limit_retry`` waits for the
        servers' Retry-After or leaves the work to the next scheduled run."""
        if not self.failed:
            return
        if strict or not self.succeeded:
            names = ", ".join(sorted(self.failed))
            lost = "".join(
                f"; lost {x.source} ({x.error})"
                for x in sorted(self.lost.values(), key=attrgetter("source"))[:NAMED_IN_DESCRIPTION]
            )
            description = f"{len(self.failed)} brand(s) failed: {names}{lost}"
            metadata = {
                "brands_failed": len(self.failed),
                "brands_succeeded": len(self.succeeded),
                "errors": dg.MetadataValue.json(self.failed),
            }
            if rate_limited:
                retry = rate_limit_retry(
                    [getattr(err, "retry_after", None) for err in rate_limited],
                    description,
                    metadata,
                )
                if isinstance(retry, dg.RetryRequested):
                    self.context.log.warning(
                        f"{description}; rate limited: retrying after {retry.seconds_to_wait:g}s "
                        "(the API's Retry-After)"
                    )
                raise retry
            raise dg.Failure(description=description, metadata=metadata)

    def lose_source(
        self, source: str, error: str | BaseException, brand_ids: Iterable[str] = ()
    ) -> None:
        """Record that ``source`` failed for ``brand_ids``; ``error`` is one line with no
        secret, or the exception (described with ``describe_error``).

        Several failures of one source (one per batch, country or city) add up into one
        entry naming the first error; the brands are not counted as failed brands.
        """
        text = error if isinstance(error, str) else describe_error(error)
        text = one_line(redact(text))
        entry = self.lost.get(source)
        if entry is None:
            entry = self.lost[source] = LostSource(source, text)
            self.context.log.warning(f"source {source} lost: {text}")
        entry.brands.update(brand_ids)

    def check_results(
        self, asset: str | dg.AssetKey, *, sources: bool = False
    ) -> list[dg.AssetCheckResult]:
        """Results of ``completeness_check_specs(asset, sources=...)`` for this batch."""
        key = dg.AssetKey.from_coercible(asset)
        failed = sorted(self.failed.items())
        named = {b: one_line(e) for b, e in failed[:NAMED_IN_CHECK]}
        total = len(self.succeeded) + len(self.failed)
        if self.failed:
            brands_text = f"{len(self.failed)} of {total} brand(s) failed: " + _named(
                [f"{b} ({e})" for b, e in named.items()], len(failed)
            )
        else:
            brands_text = f"all {total} brand(s) processed"
        seen = set(self.succeeded) | set(self.failed)
        without = {b for x in self.lost.values() for b in x.brands} - seen
        if without:
            brands_text += f"; {len(without)} more brand(s) skipped for a lost source" + (
                " (see sources_available)" if sources else ""
            )
        invalid = [p for p in self.invalid_rows if not (p.skips_row and p.table == "brands")]
        if invalid:
            brands_text += f"; {len(invalid)} invalid value(s) in the app's rows: " + _named(
                [p.text() for p in invalid], len(invalid), sep="; "
            )
        results = [
            dg.AssetCheckResult(
                asset_key=key,
                check_name=BRANDS_CHECK,
                passed=not self.failed and not invalid,
                severity=dg.AssetCheckSeverity.WARN,
                description=brands_text,
                metadata={
                    "brands_processed": len(self.succeeded),
                    "brands_failed": len(self.failed),
                    "failed_brands": dg.MetadataValue.json(named),
                    "invalid_rows": dg.MetadataValue.json(
                        [p.text() for p in invalid[:NAMED_IN_CHECK]]
                    ),
                },
            )
        ]
        if sources:
            lost = sorted(self.lost.values(), key=attrgetter("source"))
            if lost:
                sources_text = f"lost {len(lost)} source(s): " + _named(
                    [f"{x.source} ({x.error}; {len(x.brands)} brand(s) without it)" for x in lost],
                    len(lost),
                    sep="; ",
                )
            else:
                sources_text = "every source answered"
            results.append(
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name=SOURCES_CHECK,
                    passed=not lost,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=sources_text,
                    metadata={
                        "sources_lost": len(lost),
                        "lost_sources": dg.MetadataValue.json(
                            [
                                {
                                    "source": x.source,
                                    "error": x.error,
                                    "brands_affected": len(x.brands),
                                    "brands": sorted(x.brands)[:NAMED_IN_CHECK],
                                }
                                for x in lost[:NAMED_IN_CHECK]
                            ]
                        ),
                    },
                )
            )
        return results

    def metadata(self) -> dict[str, Any]:
        md: dict[str, Any] = {
            "brands_processed": len(self.succeeded),
            "brands_failed": len(self.failed),
        }
        if self.lost:
            md["sources_lost"] = len(self.lost)
        if self.invalid_rows:
            md["invalid_row_values"] = len(self.invalid_rows)
        return md

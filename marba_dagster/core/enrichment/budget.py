"""AI spend: the price table, the cost of one call, and budget levels with reservations.

Prices are US dollars per million tokens, input and output separately. Costs are Decimal,
rounded half-up to the micro-dollar (the ``cost_usd`` column's scale).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)
ALERT_RATIO = Decimal("0.8")

# Public list prices (USD per 1M tokens: input, output). Override or extend with
# MARBA_LLM_PRICES; a model with no price gets no AI calls (its cost could not be tracked).
DEFAULT_PRICES: dict[str, tuple[str, str]] = {
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4o": ("2.50", "10.00"),
    "gpt-4.1": ("2.00", "8.00"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.40"),
}


class PriceError(ValueError):
    """The price table is malformed, or a model has no price."""


@dataclass(frozen=True)
class Price:
    input_per_mtok: Decimal
    output_per_mtok: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        raw = (
            Decimal(int(input_tokens)) * self.input_per_mtok
            + Decimal(int(output_tokens)) * self.output_per_mtok
        ) / MILLION
        return raw.quantize(MICRO, rounding=ROUND_HALF_UP)


def _dec(value, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PriceError(f"price {where} is not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise PriceError(f"price {where} must be a non-negative number, got {value!r}")
    return d


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, Price]

    @classmethod
    def parse(cls, raw: str | None) -> PriceTable:
        """Defaults, overridden by a JSON object ``{"model": {"input_per_mtok": x,
        "output_per_mtok": y}}`` (or ``{"model": [x, y]}``)."""
        table = {m: Price(Decimal(i), Decimal(o)) for m, (i, o) in DEFAULT_PRICES.items()}
        if raw and raw.strip():
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                raise PriceError(f"price table is not valid JSON: {exc}") from None
            if not isinstance(doc, dict):
                raise PriceError("price table must be a JSON object keyed by model")
            for model, spec in doc.items():
                if isinstance(spec, dict):
                    missing = {"input_per_mtok", "output_per_mtok"} - set(spec)
                    if missing:
                        raise PriceError(f"price for {model!r} lacks {', '.join(sorted(missing))}")
                    i, o = spec["input_per_mtok"], spec["output_per_mtok"]
                elif isinstance(spec, (list, tuple)) and len(spec) == 2:
                    i, o = spec
                else:
                    raise PriceError(
                        f"price for {model!r} must be {{input_per_mtok, output_per_mtok}} "
                        "or [input, output]"
                    )
                table[str(model)] = Price(_dec(i, f"{model}.input"), _dec(o, f"{model}.output"))
        return cls(table)

    def price_for(self, model: str) -> Price:
        price = self.prices.get(model)
        if price is None:
            raise PriceError(f"no price for model {model!r}: add it to MARBA_LLM_PRICES")
        return price


@dataclass(frozen=True)
class BudgetStatus:
    """How much of the month's AI budget is used: ``ok`` < 80% <= ``throttled`` < 100% <=
    ``exhausted``."""

    level: str
    ratio: Decimal
    reason: str = ""

    @classmethod
    def ok(cls) -> BudgetStatus:
        return cls("ok", Decimal(0))


def level_for(ratio: Decimal) -> str:
    if ratio >= 1:
        return "exhausted"
    if ratio >= ALERT_RATIO:
        return "throttled"
    return "ok"


def budget_status(
    brand_budget: Decimal | None,
    brand_spent: Decimal,
    global_budget: Decimal | None,
    global_spent: Decimal,
) -> BudgetStatus:
    """The stricter of the brand's and the global budget. A brand budget of 0 means the
    brand has no AI budget (analyzer only); ``global_budget=None`` means no global cap."""
    candidates: list[tuple[Decimal, str]] = []
    if brand_budget is not None:
        if brand_budget <= 0:
            return BudgetStatus("exhausted", Decimal(1), "brand has no monthly AI budget")
        candidates.append(
            (brand_spent / brand_budget, f"brand budget {brand_spent:.2f}/{brand_budget:.2f} USD")
        )
    if global_budget is not None:
        if global_budget <= 0:
            return BudgetStatus("exhausted", Decimal(1), "global monthly AI budget is 0")
        candidates.append(
            (
                global_spent / global_budget,
                f"global budget {global_spent:.2f}/{global_budget:.2f} USD",
            )
        )
    if not candidates:
        return BudgetStatus.ok()
    ratio, reason = max(candidates, key=lambda c: c[0])
    return BudgetStatus(level_for(ratio), ratio, reason)


@dataclass
class BudgetLedger:
    """In-run spend with reservations, shared by concurrent AI calls (thread-safe).

    A call reserves its worst-case cost before it is sent; it is refused if that would take
    the brand or the global spend past 100%. The reservation is replaced by the real cost.
    """

    brand_budgets: dict[str, Decimal | None]
    brand_spent: dict[str, Decimal]
    global_budget: Decimal | None = None
    global_spent: Decimal = Decimal(0)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def status(self, brand_id: str) -> BudgetStatus:
        with self._lock:
            return budget_status(
                self.brand_budgets.get(brand_id),
                self.brand_spent.get(brand_id, Decimal(0)),
                self.global_budget,
                self.global_spent,
            )

    def reserve(self, brand_id: str, amount: Decimal) -> bool:
        with self._lock:
            budget = self.brand_budgets.get(brand_id)
            spent = self.brand_spent.get(brand_id, Decimal(0))
            if budget is not None and spent + amount > budget:
                return False
            if self.global_budget is not None and self.global_spent + amount > self.global_budget:
                return False
            self.brand_spent[brand_id] = spent + amount
            self.global_spent += amount
            return True

    def settle(self, brand_id: str, reserved: Decimal, actual: Decimal) -> None:
        with self._lock:
            delta = actual - reserved
            self.brand_spent[brand_id] = self.brand_spent.get(brand_id, Decimal(0)) + delta
            self.global_spent += delta

"""What a model call cost: tokens times the model's price (``SERGAS_TRACES["MODEL_PRICES"]``,
USD per million input and output tokens)."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from traces import conf

MILLION = Decimal(1_000_000)
CENT_FRACTION = Decimal("0.000001")  # six places, as AccountReview.cost_usd keeps


@dataclass(frozen=True)
class Cost:
    usd: Decimal
    priced: bool  # False: no price for the model; its tokens count, its cost is 0


def cost_of(models: tuple[str, ...], input_tokens: int, output_tokens: int) -> Cost:
    """The cost of a call, priced by the first of ``models`` (the response's model, then
    the request's) that the table names."""
    prices = conf.model_prices()
    for model in models:
        if model and model in prices:
            per_input, per_output = prices[model]
            usd = (input_tokens * per_input + output_tokens * per_output) / MILLION
            return Cost(usd.quantize(CENT_FRACTION, rounding=ROUND_HALF_UP), True)
    return Cost(Decimal("0.000000"), False)

"""What a remote teacher costs: USD per million prompt / completion tokens, per model.

The built-in table holds list prices at the time of writing and will age: pass your own as a dict or
a JSON file (``{"model": [prompt_usd_per_1M, completion_usd_per_1M], ...}``); entries override ours.
A model missing from the table costs 0 and is reported as unpriced rather than guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ownchat.errors import DataError

DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


def tokens_cost(prompt_tokens: int, completion_tokens: int, price: tuple[float, float]) -> float:
    """USD for a token count at ``(prompt, completion)`` USD per million tokens: the one cost formula."""
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


@dataclass
class Prices:
    table: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def lookup(self, model: str) -> tuple[float, float] | None:
        """Exact name first, then the longest table entry the name starts with (dated snapshots)."""
        if model in self.table:
            return self.table[model]
        prefixes = [k for k in self.table if model.startswith(k + "-")]
        return self.table[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.lookup(model)
        return 0.0 if price is None else tokens_cost(prompt_tokens, completion_tokens, price)

    def priced(self, model: str) -> bool:
        return self.lookup(model) is not None


def load_prices(source: Prices | dict | str | Path | None) -> Prices:
    if isinstance(source, Prices):
        return source
    if source is None:
        return Prices()
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            source = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(path, None, "price file not found", "check the path") from None
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, f"invalid JSON ({exc.msg})",
                            'expected {"model": [usd_per_1M_prompt, usd_per_1M_completion]}') from None
    table = dict(DEFAULT_PRICES)
    for model, pair in dict(source).items():
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(x, int | float) for x in pair)):
            raise DataError("prices", None, f"price for {model!r} must be [prompt, completion] USD per 1M tokens",
                            f"got {pair!r}")
        table[model] = (float(pair[0]), float(pair[1]))
    return Prices(table)

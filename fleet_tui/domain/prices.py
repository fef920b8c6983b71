"""List prices of the models the shipped profiles name, for runs whose CLI reports tokens but
no cost (codex, gemini). USD per million tokens: input, cached input, output. Published list
prices as of 2025 (OpenAI and Google pricing pages); a model not listed gets no cost rather
than a guess. Keep in step with the profiles' model lists."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float
    cached: float
    output: float


PRICES: dict[str, Price] = {
    "gpt-5-codex": Price(1.25, 0.125, 10.0),
    "gpt-5": Price(1.25, 0.125, 10.0),
    "o4-mini": Price(1.10, 0.275, 4.40),
    "gemini-2.5-pro": Price(1.25, 0.31, 10.0),  # prompts up to 200k tokens
    "gemini-2.5-flash": Price(0.30, 0.075, 2.50),
}


def priced_cost(model: str | None, *, input_tokens: int | None, output_tokens: int | None,
                cached_tokens: int | None = None) -> float | None:
    """What a run cost at list price; None for an unknown model or no token counts. Cached
    tokens are part of input_tokens (as codex and gemini count them) and cost less."""
    price = PRICES.get((model or "").split("/")[-1])
    if price is None or input_tokens is None or output_tokens is None:
        return None
    cached = min(cached_tokens or 0, input_tokens)
    return round(((input_tokens - cached) * price.input + cached * price.cached
                  + output_tokens * price.output) / 1_000_000, 6)

"""Declared parameter ranges of a device family, sampled from the scene seed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParamRange:
    low: float
    high: float
    unit: str = ""
    doc: str = ""

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def check(self, name: str, value: float) -> None:
        if not self.low <= value <= self.high:
            raise ValueError(f"parameter {name}={value} is outside its range [{self.low}, {self.high}]")


def sample_params(ranges: dict[str, ParamRange], rng: np.random.Generator,
                  given: dict[str, float] | None = None) -> dict[str, float]:
    """Every declared parameter: the given value (checked) or one drawn from its range."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(ranges))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; allowed: {sorted(ranges)}")
    values = {}
    for name, r in ranges.items():  # draw every one, so a given value does not shift the others
        drawn = r.sample(rng)
        if name in given:
            r.check(name, float(given[name]))
            drawn = float(given[name])
        values[name] = drawn
    return values

"""A uniform sample of at most k rows of a stream of any length, in O(k) memory: Algorithm L (Li, 1994).

The first k rows fill the reservoir; after that, instead of drawing a random number for every row (Algorithm R),
it draws the gap to the next row that replaces a random slot, so a stream of n rows costs O(k (1 + log(n / k)))
random draws and the rows in between are only counted. Every row ends in the sample with probability k / n.
"""

import math
import random
from collections.abc import Iterable
from itertools import islice
from typing import TypeVar

Row = TypeVar("Row")


def reservoir_sample(rows: Iterable[Row], k: int, seed: int) -> list[Row]:
    """At most `k` rows of `rows`, each kept with the same probability; all of them when there are at most k. The
    result is in reservoir order (not the stream's). Seeded: the same stream and seed give the same sample."""
    if k < 0:
        raise ValueError("k must not be negative")
    iterator = iter(rows)
    reservoir = list(islice(iterator, k))
    if len(reservoir) < k or k == 0:
        return reservoir
    rng = random.Random(seed)
    weight = math.exp(math.log(_open_unit(rng)) / k)
    while True:
        row = next(islice(iterator, _gap(rng, weight), None), _END)
        if row is _END:
            return reservoir
        reservoir[rng.randrange(k)] = row
        weight *= math.exp(math.log(_open_unit(rng)) / k)


_END = object()


def _gap(rng: random.Random, weight: float) -> int:
    """How many rows to pass over before the next one that enters the reservoir."""
    if weight >= 1.0:  # rounding, with a huge k early in the stream: the very next row enters
        return 0
    return math.floor(math.log(_open_unit(rng)) / math.log1p(-weight))


def _open_unit(rng: random.Random) -> float:
    """A uniform draw in (0, 1): log(0) is undefined."""
    value = rng.random()
    while value == 0.0:
        value = rng.random()
    return value

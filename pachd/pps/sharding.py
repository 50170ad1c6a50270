"""How a job's inputs are split between its pods.

Each input gets a modulus; the pod count is their product, and pod i sees
shard number `digits(i)[k]` of input k (i written in the mixed radix of the
moduli). An input's method decides what its modulus splits: blocks (map),
top-level files (reduce), or nothing (global: every pod sees everything).

Moduli start at 1 and the input with the most data per shard gets one more
shard, as long as no shard would come out empty and the product stays within
the wanted parallelism; so a one-input job gets exactly the pods it asks for
when the data allows, and pods with nothing to do are never started.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

from pachd.pfs.sharding import EVERYTHING, Shard
from pachd.pps.specs import Parallelism, Partition, Strategy

MAX_PODS = 1000
"""The most pods one job may run; parallelism specs asking for more are refused."""


def pod_count_wanted(parallelism: Parallelism, nodes: int) -> int:
    """Pods a parallelism spec asks for on a cluster of `nodes` nodes (1 to MAX_PODS)."""
    if parallelism.strategy is Strategy.CONSTANT and parallelism.constant > 0:
        return min(MAX_PODS, parallelism.constant)
    coefficient = 1.0 if parallelism.strategy is Strategy.CONSTANT else parallelism.coefficient
    if not math.isfinite(coefficient):  # refused at the API; records from before may hold anything
        return 1
    return min(MAX_PODS, max(1, math.floor(coefficient * nodes)))


def shard_of(partition: Partition, number: int, modulus: int) -> Shard:
    """The PFS shard that input partition `partition` gives shard `number` of `modulus`."""
    if partition is Partition.BLOCK:
        return Shard(block_number=number, block_modulus=modulus)
    if partition is Partition.FILE:
        return Shard(file_number=number, file_modulus=modulus)
    return EVERYTHING


def digits(index: int, moduli: Sequence[int]) -> list[int]:
    """Pod `index` in the mixed radix of `moduli` (the last input varies fastest)."""
    out = [0] * len(moduli)
    for k in range(len(moduli) - 1, -1, -1):
        out[k] = index % moduli[k]
        index //= moduli[k]
    return out


async def choose_moduli(
    partitions: Sequence[Partition],
    sizes: Sequence[int],
    wanted: int,
    has_data: Callable[[int, Shard], Awaitable[bool]],
) -> list[int]:
    """The modulus of each input: their product is at most `wanted`, no shard is empty.

    `sizes[k]` is how much data input k offers (only compared between inputs,
    and with 0); `has_data(k, shard)` whether any of it falls in a shard.
    """
    moduli = [1] * len(partitions)
    done = {k for k, p in enumerate(partitions) if p is Partition.REPO or sizes[k] == 0}
    while math.prod(moduli) < wanted and len(done) < len(moduli):
        k = max((k for k in range(len(moduli)) if k not in done), key=lambda k: sizes[k] / moduli[k])
        candidate = moduli[k] + 1
        if math.prod(moduli) // moduli[k] * candidate > wanted:
            done.add(k)
            continue
        for number in range(candidate):
            if not await has_data(k, shard_of(partitions[k], number, candidate)):
                done.add(k)
                break
        else:
            moduli[k] = candidate
    return moduli

"""Timing helpers the benchmark scripts share."""
from __future__ import annotations

import time
from typing import Callable


def paired(fn: Callable[[], object], base: Callable[[], object], repeat: int,
           clock: Callable[[], float] = time.perf_counter, warmup: int = 3) -> tuple[float, float]:
    """Minimum time of fn and of base, run alternately (drift on a shared machine hits both alike),
    after `warmup` calls of each (TorchScript's profiling executor optimises on its second or third call)."""
    for _ in range(warmup):
        fn()
        base()
    a, b = [], []
    for _ in range(repeat):
        t = clock()
        fn()
        a.append(clock() - t)
        t = clock()
        base()
        b.append(clock() - t)
    return min(a), min(b)

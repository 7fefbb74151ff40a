"""Suite-wide settings.

Under pytest-xdist every worker gets its share of the cores as torch intra-op threads: two workers on
two cores would otherwise each start two threads, and a ResNet-50 training step beside another
worker's export then runs about five times slower than alone (110 s instead of 21 s measured).
Child processes (the CLI, DDP and fresh-process tests) inherit the limit through OMP_NUM_THREADS.
"""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    _threads = max(1, (os.cpu_count() or 1) // _workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads))

    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

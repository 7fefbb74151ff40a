"""Progress bars for long work (training, evaluation, export, dataset generation), all drawn one way.

A bar is tqdm's on stderr, shown only when stderr is a terminal (tqdm's ``disable=None``), so logs, pipes
and tests stay quiet and stdout keeps the results. :func:`ticking` redraws a bar every second while one long
step runs (an AOTInductor compile), so its elapsed time moves instead of looking hung.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterable, Iterator, Optional


def bar(iterable: Optional[Iterable] = None, what: str = "", unit: str = "it", total: Optional[int] = None,
        initial: int = 0, enabled: Optional[bool] = None, leave: bool = False):
    """A tqdm bar over ``iterable`` (or updated by hand when it is None). ``enabled``: None = when stderr is a
    terminal, False = never, True = always."""
    from tqdm import tqdm

    return tqdm(iterable, desc=what, unit=unit, total=total, initial=initial,
                disable=None if enabled is None else not enabled, mininterval=1.0, leave=leave,
                dynamic_ncols=True)


@contextlib.contextmanager
def ticking(progress, every_s: float = 1.0) -> Iterator[None]:
    """Redraw ``progress`` every ``every_s`` seconds while the block runs (a step with no inner progress)."""
    if getattr(progress, "disable", True):
        yield
        return
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every_s):
            progress.refresh()

    thread = threading.Thread(target=tick, name="progress-tick", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()

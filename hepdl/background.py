"""Work ahead in a background thread: the next chunk read, the next batch gathered.

The producers here are C code that releases the GIL (uproot's decompression, numpy's gathers
from memory maps, torch's pinning), so a thread overlaps them with the consumer's work on
the same process's data, without a copy between processes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], depth: int = 1, name: str = "hepdl-read-ahead") -> Iterator[T]:
    """The items of ``items`` in order, produced up to ``depth`` ahead in a background thread.

    An error in the thread is raised here, at the item it replaced; leaving the loop early (or
    closing this generator) stops the thread.
    """
    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=max(int(depth), 1))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, which raises it
            put(_Failure(err))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()

"""The cyclic garbage collector, tuned for a process that allocates a lot and keeps little.

CPython collects its youngest generation every 700 net allocations of container objects,
and each collection of an older generation walks every object that survived into it. The
collector, `replay` and invoice closing allocate a few dozen dicts and tuples per event
and keep almost none of them (they are freed by reference counting the moment a batch is
committed), so on the defaults a tenth or more of their time went to collections that
found nothing: `rintik-lite replay` of the bench's 50,000 events took 16.3-16.5 s with
the defaults and 13.2-14.0 s with (200,000, 20, 20), measured back to back, at the same
peak RSS (169 MB).

`tune()` raises the youngest generation's threshold to 100,000 and the older ones' to 20.
Reference cycles (an exception and its traceback, say) are still collected, a little
later; a collection of 100,000 young objects takes a few milliseconds.
"""

from __future__ import annotations

import gc

THRESHOLDS = (100_000, 20, 20)


def tune() -> None:
    """Set the thresholds for this process (the long-running and bulk commands call it)."""
    gc.set_threshold(*THRESHOLDS)

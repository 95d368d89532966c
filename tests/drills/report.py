"""What a drill did and counted, printed when it ends (``pytest -s``, ``make drills``)."""

import time
from collections import Counter
from typing import Any


class DrillReport:
    """Counters and notes of one drill: ``report.count("requests")``,
    ``report.note("postgres stopped at", "12.3 s")``, then ``report.print()``."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self.counts: Counter[str] = Counter()
        self.notes: dict[str, Any] = {}

    def count(self, name: str, amount: int = 1) -> None:
        self.counts[name] += amount

    def note(self, name: str, value: Any) -> None:
        self.notes[name] = value

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def lines(self) -> list[str]:
        width = max((len(name) for name in [*self.counts, *self.notes]), default=10)
        lines = [f"== drill: {self.title} ({self.elapsed():.1f} s)"]
        lines += [f"   {name:<{width}}  {value}" for name, value in sorted(self.counts.items())]
        lines += [f"   {name:<{width}}  {value}" for name, value in self.notes.items()]
        return lines

    def print(self) -> None:
        print("\n" + "\n".join(self.lines()), flush=True)

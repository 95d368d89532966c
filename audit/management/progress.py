"""Progress bars for the audit commands: services report ``(label, done, total)``."""

from types import TracebackType

from django.core.management.base import OutputWrapper
from rich.console import Console
from rich.progress import Progress, TaskID


class ProgressBars:
    """One rich bar per label a service reports; silent unless stdout is a terminal.

    Usable as the ``on_progress`` callback of ``audit_partitions_maintain`` and, through
    :meth:`counter`, of ``audit_trail_verify``.
    """

    def __init__(self, stdout: OutputWrapper) -> None:
        # rich writes control sequences itself: give it the stream, not Django's wrapper
        # (which appends a newline to every write).
        stream = getattr(stdout, "_out", stdout)
        enabled = stdout.isatty()
        self._progress = Progress(
            console=Console(file=stream, force_terminal=enabled),
            transient=True,
            disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> "ProgressBars":
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, label: str, done: int, total: int | None) -> None:
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(label, total=total)
        self._progress.update(self._tasks[label], completed=done, total=total)

    def counter(self, label: str, total: int | None) -> "_Counter":
        return _Counter(self, label, total)


class _Counter:
    def __init__(self, bars: ProgressBars, label: str, total: int | None) -> None:
        self._bars, self._label, self._total = bars, label, total

    def __call__(self, done: int) -> None:
        self._bars(self._label, done, self._total)

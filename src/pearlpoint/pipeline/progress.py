"""A rich progress bar for batch runs: rows done, rate, ETA, ok/failed/bad counts."""

from __future__ import annotations

from typing import Any

from pearlpoint.pipeline.inputs import BadRow


class RichProgress:
    """Implements the runner's ProgressSink on a rich ``Progress``; prints the first bad rows."""

    def __init__(self, console: Any = None, *, show_bad: int = 20, description: str = "generate") -> None:
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7} rows/s"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), TextColumn("{task.fields[counts]}"),
            console=self.console, transient=False, refresh_per_second=4,
        )
        self.description = description
        self.show_bad = show_bad
        self.ok = self.failed = self.bad = 0
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def _counts(self) -> str:
        return f"ok {self.ok}  failed {self.failed}  bad {self.bad}"

    def started(self, total: int | None) -> None:
        self.task = self.progress.add_task(self.description, total=total, rate="-", counts=self._counts())

    def _refresh(self) -> None:
        task = self.progress.tasks[self.task]
        speed = task.speed
        self.progress.update(self.task, rate=f"{speed:.2f}" if speed else "-", counts=self._counts())

    def advanced(self, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        self.progress.advance(self.task)
        self._refresh()

    def bad_row(self, bad: BadRow) -> None:
        self.bad += 1
        if self.bad <= self.show_bad:
            from rich.markup import escape  # noqa: PLC0415

            self.progress.console.print(f"[yellow]skipped[/] {escape(bad.message())}", highlight=False)
        elif self.bad == self.show_bad + 1:
            self.progress.console.print("[yellow]more bad rows: see bad_rows.jsonl in the run directory[/]")
        self.progress.advance(self.task)
        self._refresh()

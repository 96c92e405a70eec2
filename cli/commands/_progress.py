"""Progress of long commands (simulate, fit, predict, attribute), from real task progress.

:class:`ProgressView` listens to ``services.progress`` events (relayed from the workers by the
flow's wait loop, or sent directly by jobs running in-process) and draws one rich bar per fold
(epochs and steps, loss, validation loss, ETA) or per batch job (done / total). When the output
is not a terminal there is no bar: one line per finished fold instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cli.commands._common import console as default_console
from cli.commands._common import plain
from services.progress import listen

__all__ = ["ProgressView", "show_progress", "BATCH_LABELS"]

#: Progress kinds drawn as one "done / total" bar each, and their labels.
BATCH_LABELS = {
    "mock": "generate mock (clusters)",
    "ingest": "ingest (cluster maps)",
    "predict": "predict",
    "attribute": "attribute",
}


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


class ProgressView:
    """A ``services.progress`` listener that draws bars (terminal) or fold lines (otherwise)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or default_console
        self.bars = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not self.bars,
        )
        self.models: dict[int, str] = {}
        self.tasks: dict[tuple[Any, ...], TaskID] = {}
        self.lock = threading.Lock()

    def __call__(self, meta: dict[str, Any]) -> None:
        """Handle one event (see ``services.progress``); unknown kinds are ignored."""
        with self.lock:
            kind = meta.get("kind")
            if kind == "run":
                self.models[int(meta["run_id"])] = str(meta.get("model") or "run")
            elif kind == "train":
                self._train(meta)
            elif kind == "fold-done":
                self._fold_done(meta)
            elif kind in BATCH_LABELS:
                self._batches(kind, meta)

    def _label(self, meta: dict[str, Any]) -> str:
        run_id = meta.get("run_id")
        model = self.models.get(int(run_id), "run") if run_id is not None else "run"
        return f"{model} (run {run_id}) fold {meta.get('fold')}"

    def _train(self, meta: dict[str, Any]) -> None:
        key = ("fold", meta.get("run_id"), meta.get("fold"))
        steps, epochs = int(meta.get("steps") or 1), int(meta.get("epochs") or 1)
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                plain(self._label(meta)).plain, total=epochs * steps, info=""
            )
        done = (int(meta.get("epoch") or 1) - 1) * steps + int(meta.get("step") or 0)
        info = f"epoch {meta.get('epoch')}/{epochs}  loss {_num(meta.get('loss'))}"
        if meta.get("val_loss") is not None:
            info += f"  val {_num(meta.get('val_loss'))}"
        if meta.get("member"):
            info += f"  member {meta['member']}"
        self.progress.update(self.tasks[key], completed=done, info=info)

    def _fold_done(self, meta: dict[str, Any]) -> None:
        key = ("fold", meta.get("run_id"), meta.get("fold"))
        summary = (
            f"sigma_lnM {_num(meta.get('sigma_lnM'))}, bias {_num(meta.get('bias_dex'))} dex, "
            f"{_num(meta.get('seconds'))} s"
        )
        if not self.bars:
            self.console.print(plain(f"{self._label(meta)} done: {summary}"))
            return
        if key not in self.tasks:  # already done before this command (resumed runs)
            self.tasks[key] = self.progress.add_task(
                plain(self._label(meta)).plain, total=1, info=""
            )
        task = self.progress.tasks[self._index(self.tasks[key])]
        # early stopping ends a bar early: the fold is complete at its last step
        self.progress.update(
            self.tasks[key], total=max(task.completed, 1), completed=max(task.completed, 1),
            info=f"done: {summary}",
        )  # fmt: skip

    def _index(self, task_id: TaskID) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task_id)

    def _batches(self, kind: str, meta: dict[str, Any]) -> None:
        key = (kind, meta.get("task_id"))
        total = int(meta.get("total") or 0)
        if key not in self.tasks:
            label = BATCH_LABELS[kind]
            self.tasks[key] = self.progress.add_task(label, total=total or None, info="")
        self.progress.update(self.tasks[key], completed=int(meta.get("done") or 0), total=total)


@contextmanager
def show_progress(console: Console | None = None) -> Iterator[ProgressView]:
    """Draw the progress of this process's tasks while the block runs."""
    view = ProgressView(console)
    with view.progress, listen(view):
        yield view

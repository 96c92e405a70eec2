"""Watch an inbox folder: report each file once it is complete, within seconds of its arrival.

File events come from the operating system through ``watchfiles`` (inotify on Linux; set
``WATCHFILES_FORCE_POLLING=1`` where events do not cross the mount, e.g. some network shares).
A file counts as complete once its size and modification time have stayed the same for
``settle_s`` seconds: no event says "the writer closed it" on every platform, and a copy in
progress grows. Temporary names (hidden files, ``*.part``, ``*.tmp``, ``*.crdownload``, ``*~``)
are never reported: a downloader that renames its file when done is seen at the rename.

Files that settle while others are still being written are held back (up to ``max_hold_s``),
so a catalogue and the YAML manifest naming it, copied together, are handed over together.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import watchfiles

__all__ = [
    "IGNORED_SUFFIXES",
    "is_inbox_candidate",
    "SettlingFiles",
    "watch_folder",
    "heartbeat_loop",
]

logger = logging.getLogger(__name__)

#: Files that are never ingested: partial downloads, editor droppings (hidden files neither).
IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".swp", "~")


def is_inbox_candidate(path: Path, inbox: Path) -> bool:
    """Tell whether ``path`` (inside ``inbox``) may be ingested: no hidden part, no temporary name."""
    try:
        parts = Path(path).relative_to(inbox).parts
    except ValueError:
        return False
    if not parts or any(part.startswith(".") for part in parts):
        return False
    return not parts[-1].endswith(IGNORED_SUFFIXES)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # clock time of the last change seen
    ready_at: float | None = None  # clock time it settled


class SettlingFiles:
    """Files seen changing, until their size and modification time stay put for ``settle_s``.

    Parameters
    ----------
    settle_s : float
        Quiet time after which a file counts as complete [s].
    max_hold_s : float
        A complete file waits for the other pending files to settle too, at most this long [s].
    clock : callable
        Monotonic clock (seconds); injectable for tests.
    """

    def __init__(
        self,
        settle_s: float,
        *,
        max_hold_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settle_s <= 0:
            raise ValueError(f"settle_s must be > 0 s, got {settle_s}")
        self.settle_s = settle_s
        self.max_hold_s = max_hold_s
        self._clock = clock
        self._pending: dict[Path, _Seen] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def note(self, path: Path) -> None:
        """Record that ``path`` changed (its quiet time starts again)."""
        path = Path(path)
        seen = self._pending.get(path)
        if seen is None:
            self._pending[path] = _Seen(-1, -1, self._clock())
        else:
            seen.since, seen.ready_at = self._clock(), None

    def due(self) -> list[Path]:
        """Pop and return the complete files (sorted), or ``[]`` while they are held back.

        Each pending file is looked at again: one that vanished is forgotten, one whose size or
        modification time changed starts its quiet time again.
        """
        now = self._clock()
        for path, seen in list(self._pending.items()):
            try:
                st = path.stat()
            except OSError:
                del self._pending[path]  # deleted or renamed away (its new name has its own event)
                continue
            if not path.is_file():
                del self._pending[path]
                continue
            if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                seen.size, seen.mtime_ns, seen.since, seen.ready_at = (
                    st.st_size,
                    st.st_mtime_ns,
                    now,
                    None,
                )
            elif seen.ready_at is None and now - seen.since >= self.settle_s:
                seen.ready_at = now
        ready = {p: s.ready_at for p, s in self._pending.items() if s.ready_at is not None}
        if not ready:
            return []
        others_busy = len(ready) < len(self._pending)
        if others_busy and now - min(ready.values()) < self.max_hold_s:
            return []
        for path in ready:
            del self._pending[path]
        return sorted(ready)


def watch_folder(
    inbox: Path,
    on_files: Callable[[list[Path]], None],
    *,
    settle_s: float,
    stop: threading.Event,
    on_start: Callable[[], None] | None = None,
    tick_s: float = 0.5,
    max_hold_s: float = 30.0,
) -> None:
    """Call ``on_files`` with each batch of complete new files in ``inbox`` until ``stop`` is set.

    ``on_start`` runs once the operating-system watch is in place (a start-up scan there misses
    nothing: what arrives during it is reported afterwards). An exception from either callback
    is logged and the watch goes on (the scheduled scan is the fallback for what it missed).
    """
    inbox = Path(inbox).resolve()
    settling = SettlingFiles(settle_s, max_hold_s=max_hold_s)
    started = False
    for changes in watchfiles.watch(
        inbox,
        watch_filter=None,
        stop_event=stop,
        rust_timeout=max(1, int(tick_s * 1000)),
        yield_on_timeout=True,
        debounce=max(1, int(tick_s * 1000)),
        step=50,
        recursive=True,
        raise_interrupt=False,
        ignore_permission_denied=True,
    ):
        if not started:
            started = True
            if on_start is not None:
                _guarded(on_start, "start-up scan of %s", inbox)
        for change, raw in changes:
            path = Path(raw)
            if change != watchfiles.Change.deleted and is_inbox_candidate(path, inbox):
                settling.note(path)
        ready = settling.due()
        if ready:
            logger.info("inbox %s: %d complete file(s): %s", inbox, len(ready), ready)
            _guarded(functools.partial(on_files, ready), "ingestion of %s", ready)


def _guarded(call: Callable[[], object], what: str, arg: object) -> None:
    try:
        call()
    except Exception:
        logger.exception("inbox watcher: " + what + " failed (the scheduled scan retries)", arg)


def heartbeat_loop(
    path: Path, alive: Callable[[], bool], stop: threading.Event, every_s: float = 15.0
) -> None:
    """Touch ``path`` every ``every_s`` seconds while ``alive()`` holds, until ``stop`` is set.

    A container healthcheck reads the file's age: a dead watcher stops the heartbeat.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while not stop.is_set():
        if alive():
            path.touch()
        stop.wait(every_s)

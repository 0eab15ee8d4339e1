"""SIGTERM handled like Ctrl-C: the command unwinds (transactions roll back, ``track_run`` marks the run
interrupted) and the shell prints ``error: terminated`` and exits 143 (Ctrl-C: ``error: interrupted``, 130).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A ``KeyboardInterrupt``, so code that cleans up after Ctrl-C cleans up after it too."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def install() -> None:
    """Make SIGTERM raise ``Terminated`` in the main thread (the console script calls this first)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def stop_on_signals(loop: Any, stop: Any) -> None:
    """For an asyncio command that stops gracefully: SIGINT and SIGTERM set ``stop`` (an ``asyncio.Event``)
    instead of unwinding; when the command then returns, the shell still reports the signal and exits 130/143.

    Use it in place of ``loop.add_signal_handler(sig, stop.set)``.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _note, sig, stop)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread / Windows
            pass


def _note(sig: int, stop: Any) -> None:
    _received.append(sig)
    stop.set()


def received() -> int | None:
    """The signal a graceful stop (``stop_on_signals``) took, if any."""
    return _received[-1] if _received else None


def reset() -> None:
    _received.clear()


def outcome(sig: int) -> tuple[str, int]:
    """The error line's text and the exit code for a command stopped by ``sig``."""
    return ("terminated", EXIT_TERMINATED) if sig == signal.SIGTERM else ("interrupted", EXIT_INTERRUPTED)

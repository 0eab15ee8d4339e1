"""Typed errors. The library raises these; only ``cli/main.py`` turns them into exit codes.

Every message is one line that says what is wrong and what to do about it.
"""

from __future__ import annotations


class IbkrToolError(Exception):
    """Base of every error the tool reports to the user. ``exit_code`` follows ARCHITECTURE.md rule 6."""

    exit_code = 1


class InputError(IbkrToolError):
    """Bad input from the user: options, dates, files, symbols that cannot be parsed (exit 3)."""

    exit_code = 3


class GatewayError(IbkrToolError):
    """TWS / IB Gateway is unreachable or the connection failed (exit 4)."""

    exit_code = 4


class StoreError(IbkrToolError):
    """The database is unreachable or refused a statement (exit 5). Messages never carry passwords."""

    exit_code = 5


class IbRefused(IbkrToolError):
    """IB answered but refused the request: unknown contract, permissions, rejected order (exit 6)."""

    exit_code = 6

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PacingError(IbRefused):
    """IB refused a historical request for breaking its pacing rules (error 162)."""


class OrderRefused(IbRefused):
    """IB rejected an order (e.g. error 201), or the tool refused to send it for safety."""

"""``account-summary``: balances of the managed accounts, read from the gateway and stored in account_snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ibkrtool.app.gateway import gateway_of
from ibkrtool.app.workspace import Workspace

if TYPE_CHECKING:
    from ibkrtool.ib.account import AccountSummary


@dataclass(frozen=True)
class AccountRequest:
    account: str = ""  # one account id, or every managed one
    store: bool = True


@dataclass
class AccountReport:
    accounts: list[AccountSummary] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self.accounts]


def columns() -> list[str]:
    """The summary's columns, in display order."""
    from ibkrtool.ib.account import FIGURES

    return ["account", "mode", "account_type", "currency", *FIGURES.values()]


def account_summary(ws: Workspace, request: AccountRequest) -> AccountReport:
    """Connect read-only, take each account's summary, store it (one transaction per account) unless told not to."""
    async def fetch() -> list[AccountSummary]:
        async with gateway_of(ws, readonly=True) as gateway:
            return await gateway.account_summaries(request.account)

    summaries = ws.run_async(fetch())
    if request.store:
        from ibkrtool.store.accounts import write_snapshot

        engine = ws.store(write=True)
        with ws.journal("account-summary", {"account": request.account}) as run:
            for s in summaries:
                run.rows_written += write_snapshot(engine, s.taken_at, s.account, s.mode, s.values)
    return AccountReport(summaries)

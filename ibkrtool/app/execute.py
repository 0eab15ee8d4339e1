"""``execute``: a strategy run's target positions → orders, simulated on bars or sent through IB, never twice.

Modes: ``simulate`` (the default: fills on bars by the backtest's rules, nothing reaches IB), ``paper`` (a paper
account, id ``DU…``, is required) and ``live`` (real money: needs the confirmation and an order value cap). Through
IB the default is one order bringing the account's position to the run's latest target; ``replay`` sends each
pending signal instead, and only signals younger than ``max_signal_age_s`` (default one bar) by the gateway's clock. The
money-safety rules live in ``execution.executor`` (``check_live_flags``, ``check_account``); this module applies
them before anything is sent. Orders go out on a gateway opened with ``readonly=False``; the run is journalled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ibkrtool.app.gateway import gateway_of
from ibkrtool.app.outcome import Failures
from ibkrtool.app.workspace import Workspace
from ibkrtool.errors import IbRefused, InputError, OrderRefused
from ibkrtool.execution.executor import ExecuteResult
from ibkrtool.execution.report import check_execution_log, write_execution_log
from ibkrtool.model import BarSize, Instrument

__all__ = ["ExecuteReport", "ExecuteReports", "ExecuteRequest", "check_execution_log", "execute", "execute_each",
           "fill_dict", "write_execution_log"]

if TYPE_CHECKING:
    import pandas as pd

    from ibkrtool.execution.executor import ExecutePlan
    from ibkrtool.execution.sources import RunTargets
    from ibkrtool.model.order import Fill

MODES = ("simulate", "paper", "live")
ON_REJECT = ("continue", "stop")

OnAccount = Callable[[str, str, str], None]
"""Called as ``(account, account_type, mode)`` once the account is checked, before any order is sent."""


@dataclass(frozen=True)
class ExecuteRequest:
    """What to execute and how.

    Targets: exactly one of ``run_id`` (a stored run), ``strategy`` (its latest stored run on ``instrument``) or
    ``positions`` (a positions CSV path, ``-`` = stdin: for its ``symbol`` column's instruments, which
    ``instrument`` must then match, or for ``instrument`` when it has none). ``quantity``: shares (base units) per
    unit of target. ``bars``: a bars CSV for simulated fills instead of the store; ``tz``: the zone of times written
    without one in ``positions`` and ``bars``. ``commission``: a commission spec (None: ib-forex for pairs, ib-fixed
    otherwise). ``bar_size``: of the bars for simulated fills (None: the run's, 5m for a CSV).

    Through IB (paper/live): by default ONE order brings the account's current position to the run's latest target
    (``latest`` is accepted and changes nothing: that is the default); ``replay`` sends every signal not placed yet,
    in order, and refuses all of them (``InputError``, nothing sent) when any is older than ``max_signal_age_s``
    seconds (None: one bar of the run's bar size), measured on the gateway's clock from the signal bar's close.
    """

    run_id: str | None = None
    strategy: str | None = None
    positions: str | None = None
    instrument: Instrument | None = None
    quantity: float = 1.0
    mode: str = "simulate"
    real_money_confirmed: bool = False
    max_order_value: float | None = None
    fill: str = "next-open"
    commission: str | None = None
    bar_size: BarSize | None = None
    bars: str | None = None
    tz: ZoneInfo | None = None
    latest: bool = False
    replay: bool = False
    max_signal_age_s: float | None = None
    on_reject: str = "continue"
    account: str = ""
    timeout_s: float = 30.0

    def check(self) -> None:
        """Refuse what cannot (or must not) run before the database or the gateway is touched (``InputError``)."""
        from ibkrtool.execution.executor import check_live_flags

        if self.mode not in MODES:
            raise InputError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.on_reject not in ON_REJECT:
            raise InputError("--on-reject must be continue or stop")
        check_live_flags(self.mode, self.real_money_confirmed, self.max_order_value)
        if sum(x is not None for x in (self.run_id, self.strategy, self.positions)) != 1:
            raise InputError("give exactly one of --run ID, --strategy NAME --symbol S, --positions FILE")
        if self.strategy is not None and self.instrument is None:
            raise InputError("--strategy needs --symbol")
        self._check_replay()
        if self.positions == "-" and self.bars == "-":
            raise InputError("--positions - and --bars - would both read stdin; give one of them as a file")

    def _check_replay(self) -> None:
        if self.replay and self.latest:
            raise InputError("--latest (the default: one order to the latest target) and --replay (every signal) "
                             "exclude each other; pick one")
        if self.replay and self.mode == "simulate":
            raise InputError("--replay is for --paper/--live: --simulate always fills every signal on its bars")
        if self.max_signal_age_s is not None and not self.replay:
            raise InputError("--max-signal-age applies to --replay only (the default sends one order to the latest "
                             "target, whatever the signals' age)")
        if self.max_signal_age_s is not None and self.max_signal_age_s <= 0:
            raise InputError("--max-signal-age must be positive")

    def journal_args(self) -> dict[str, Any]:
        return {"run": self.run_id, "strategy": self.strategy, "positions": self.positions,
                "symbol": self.instrument.display if self.instrument else None, "quantity": self.quantity,
                "mode": self.mode, "max_order_value": self.max_order_value, "fill": self.fill,
                "commission": self.commission, "bar_size": str(self.bar_size) if self.bar_size else None,
                "bars": self.bars, "tz": self.tz.key if self.tz else None, "latest": self.latest,
                "replay": self.replay, "max_signal_age_s": self.max_signal_age_s, "on_reject": self.on_reject,
                "account": self.account}


@dataclass
class ExecuteReport(ExecuteResult):
    """What one ``execute`` did (the executor's result: every intent of the run, the order refs placed by THIS call
    in ``sent``, those already placed before, those skipped for another reason, IB's rejections and the fills), with
    the run, instrument and account type it was for."""

    run_id: str = ""
    symbol: str = ""
    account_type: str = ""

    @property
    def commission(self) -> float:
        return float(sum(f.commission for f in self.fills))

    def as_dict(self) -> dict[str, Any]:
        """The summary (the counts of the human table: intents, placed, already_placed, rejected, fills and their
        commission), then the details: refs placed and already placed, rejections, skips, and every fill."""
        return {
            "mode": self.mode, "account": self.account, "account_type": self.account_type or None,
            "run_id": self.run_id, "symbol": self.symbol,
            "intents": len(self.intents), "placed": self.placed, "already_placed": len(self.already_placed),
            "rejected": len(self.rejected), "fills": len(self.fills), "commission": self.commission,
            "placed_refs": list(self.sent), "already_placed_refs": [i.order_ref for i in self.already_placed],
            "rejections": [{"order_ref": i.order_ref, "side": i.side.value, "quantity": i.quantity, "code": code,
                            "reason": text} for i, code, text in self.rejected],
            "skipped": [{"order_ref": ref, "reason": why} for ref, why in self.skipped],
            "executions": [fill_dict(f) for f in self.fills],
        }


def fill_dict(fill: Fill) -> dict[str, Any]:
    """One fill as JSON-plain data (time ISO 8601 UTC with Z)."""
    return {"time": fill.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "symbol": fill.symbol, "side": fill.side.value,
            "quantity": fill.quantity, "price": float(fill.price), "commission": float(fill.commission),
            "order_ref": fill.order_ref, "mode": fill.mode, "exec_id": fill.exec_id}


@dataclass
class ExecuteReports:
    """What one ``execute`` did for each instrument of its source (a positions CSV may name several), and the
    instruments that failed on their own (the others were executed)."""

    reports: list[ExecuteReport] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)

    @property
    def fills(self) -> list[Fill]:
        return [f for r in self.reports for f in r.fills]

    def as_dict(self) -> dict[str, Any]:
        """One instrument and no failure: that report's ``as_dict()``; else
        ``{"reports": [...], "failures": [...]}``."""
        if len(self.reports) == 1 and not self.failures:
            return self.reports[0].as_dict()
        return {"reports": [r.as_dict() for r in self.reports],
                "failures": [f.as_dict() for f in self.failures.items]}


def execute(ws: Workspace, request: ExecuteRequest, on_account: OnAccount | None = None) -> ExecuteReport:
    """Execute the run's targets for ONE instrument in ``request.mode``; fills are recorded in the ``executions``
    table. A positions CSV naming several symbols is refused here (``execute_each`` serves each of them).

    Raises ``InputError`` (exit 3) for bad input or missing live flags, ``OrderRefused`` (exit 6) for an account
    the mode may not trade in or a rejection under ``on_reject='stop'``, ``IbRefused`` (exit 6) for a contract IB
    does not know, ``GatewayError`` (exit 4), ``StoreError`` (exit 5).
    """
    request.check()
    csv_runs = _csv_runs(request)
    if len(csv_runs) > 1:
        raise InputError(f"positions CSV {request.positions} holds {len(csv_runs)} symbols "
                         f"({', '.join(r.symbol for r in csv_runs)}): use execute_each")
    done = _execute(ws, request, csv_runs, on_account)
    done.failures.raise_if_any(1)
    return done.reports[0]


def execute_each(ws: Workspace, request: ExecuteRequest, on_account: OnAccount | None = None) -> ExecuteReports:
    """Execute every instrument of the request's source (one run each, its own run id and report): what ``ibkrtool
    execute`` calls. An instrument IB refuses (``IbRefused``, ``InputError``) is named in ``failures`` while the
    others are executed; call ``failures.raise_if_any`` after reporting. Raises what ``execute`` raises otherwise —
    bad input, a symbol mismatch or a refused account before anything is sent."""
    request.check()
    return _execute(ws, request, _csv_runs(request), on_account)


def _csv_runs(request: ExecuteRequest) -> list[RunTargets]:
    """A positions CSV's runs, read before the database or the gateway is touched ([] for stored runs)."""
    if request.positions is None:
        return []
    from ibkrtool.execution.sources import positions_runs

    runs = positions_runs(request.positions, request.tz, request.instrument,
                          str(request.bar_size or BarSize.parse("5m")))
    if len(runs) > 1 and request.bars is not None:
        raise InputError(f"--bars holds one instrument's bars but the positions name {len(runs)} symbols "
                         f"({', '.join(r.symbol for r in runs)}): drop --bars (fills from stored bars) or split "
                         "the file")
    return runs


def _execute(ws: Workspace, request: ExecuteRequest, csv_runs: list[RunTargets],
             on_account: OnAccount | None) -> ExecuteReports:
    engine = ws.store(write=True)
    sources = csv_runs or [_stored_source(engine, request)]
    jobs = [(src, Instrument.parse(src.symbol)) for src in sources]
    plans = [_plan(request, src, instrument) for src, instrument in jobs]
    bars = [_bars(engine, src, request, instrument) for src, instrument in jobs] if request.mode == "simulate" \
        else None
    with ws.journal("execute", request.journal_args()) as record:
        if bars is not None:
            done = _simulated(jobs, plans, bars, engine)
        else:
            done = ws.run_async(_through_ib(ws, request, jobs, plans, engine, on_account))
        record.rows_written = len(done.fills)
    return done


def _simulated(jobs: list[tuple[RunTargets, Instrument]], plans: list[ExecutePlan], bars: list[pd.DataFrame],
               engine: Any) -> ExecuteReports:
    from ibkrtool.execution.executor import execute_simulated

    done = ExecuteReports()
    for (src, instrument), plan, series in zip(jobs, plans, bars, strict=True):
        conid = src.conid if src.conid is not None else _placeholder(instrument)
        done.reports.append(_report(execute_simulated(plan, series, engine, conid), src, instrument, ""))
    return done


def _stored_source(engine: Any, request: ExecuteRequest) -> RunTargets:
    from ibkrtool.execution.sources import latest_run_id, load_run_targets

    run_id = request.run_id
    if request.strategy is not None:
        assert request.instrument is not None
        run_id = latest_run_id(engine, request.strategy, request.instrument.display)
    assert run_id is not None
    return load_run_targets(engine, run_id)


def _plan(request: ExecuteRequest, src: RunTargets, instrument: Instrument) -> ExecutePlan:
    from ibkrtool.backtest.costs import parse_commission
    from ibkrtool.execution.executor import ExecutePlan
    from ibkrtool.execution.planner import FOREX_LOTS, STOCK_LOTS

    commission = request.commission or ("ib-forex" if instrument.is_forex else "ib-fixed")
    return ExecutePlan(
        symbol=instrument.display, run_id=src.run_id, targets=src.targets, quantity=request.quantity,
        mode=request.mode, lots=FOREX_LOTS if instrument.is_forex else STOCK_LOTS, fill=request.fill,
        commission=parse_commission(commission, instrument.symbol, instrument.currency),
        bar_s=BarSize.parse(src.bar_size).seconds, replay=request.replay,
        max_signal_age_s=request.max_signal_age_s, on_reject=request.on_reject,
        max_order_value=request.max_order_value, timeout_s=request.timeout_s, legacy_run_id=src.legacy_run_id)


def _placeholder(instrument: Instrument) -> int:
    from ibkrtool.store.contracts import placeholder_conid

    return placeholder_conid(instrument.display)


def _bars(engine: Any, src: RunTargets, request: ExecuteRequest, instrument: Instrument) -> pd.DataFrame:
    """Bars for simulated fills: the ``bars`` CSV (under the one time rule), else the stored series."""
    if request.bars is not None:
        from ibkrtool.data.sources import load_from_csv

        return load_from_csv(request.bars, request.tz, None, None).bars
    from ibkrtool.execution.sources import bars_for
    from ibkrtool.store.contracts import find_contract

    conid = src.conid
    if conid is None:
        found = find_contract(engine, instrument.display)
        conid = int(found.conid) if found is not None else None
    return bars_for(engine, conid, src.bar_size, src.what_to_show, src.targets)


async def _through_ib(ws: Workspace, request: ExecuteRequest, jobs: list[tuple[RunTargets, Instrument]],
                      plans: list[ExecutePlan], engine: Any, on_account: OnAccount | None) -> ExecuteReports:
    from ibkrtool.execution.executor import check_account, execute_through_ib

    done = ExecuteReports()
    async with gateway_of(ws, readonly=False) as gateway:
        chosen = check_account(gateway.managed_accounts(), request.account, request.mode,
                               request.real_money_confirmed)
        account_type = await gateway.account_type(chosen) or ""
        if on_account is not None:
            on_account(chosen, account_type, request.mode)
        for (src, instrument), plan in zip(jobs, plans, strict=True):
            try:
                contract = await gateway.qualify(instrument, engine)
            except (IbRefused, InputError) as exc:
                if isinstance(exc, OrderRefused) or len(jobs) == 1:
                    raise
                done.failures.add(instrument.display, exc)
                continue
            result = await execute_through_ib(gateway, plan, contract, chosen, engine,
                                              instrument.default_what_to_show)
            done.reports.append(_report(result, src, instrument, account_type))
    return done


def _report(result: ExecuteResult, src: RunTargets, instrument: Instrument, account_type: str) -> ExecuteReport:
    return ExecuteReport(**vars(result), run_id=src.run_id, symbol=instrument.display, account_type=account_type)

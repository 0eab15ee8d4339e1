"""A pure planner for IB's historical-data pacing rules (ib_api_facts.md §4). No sleeps, no clock of its own.

Rules, all over a sliding window and scaled by ``scale`` (like the sim's ``--pacing-scale``):
- at most 60 requests in any 10 minutes;
- no identical request within 15 s;
- fewer than 6 requests for the same contract + exchange + tick type (whatToShow) within 2 s;
- a BID_ASK request counts twice (in both counting rules);
IB titles these rules "for small bars (30 secs or less)" and lifted the hard limits for larger bars (facts §4):
requests with ``paced=False`` only obey the identical-request rule and the message rate below, and count for nothing.

And, not scaled: at most 40 requests per second, below the client's own message throttle (ib_async queues
  anything above 45 messages/s, which would delay a request past the time it was booked) and TWS's 50/s.

Times are float seconds on one clock chosen by the caller (epoch seconds, UTC, when the log is persisted so
that the budget survives restarts and is shared by processes). ``earliest()`` answers the first instant a
request may go out; ``record()`` books it once it was sent. The caller (``Pacer``) moves each booking to when its
answer came back, which is never before the server stamped it; a small safety margin (0.05 % of each window, at
least 1 ms) covers clock resolution and drift.

Pacing belongs to the gateway, so requests other processes booked on it count too (``set_others``: injected by
the caller, who reads them from the shared ledger). They carry only their booking time (taken just before they
were sent), never their answer time, so each counts as in flight — stamped *now* — until ``logged_lag_s`` after
its booking (0.5 % of the 10-minute window: 3 s, 30 ms at scale 0.01), and at that bound afterwards. IB stamps a
request when it reads it, which the rule assumes happens within that bound of the booking (the request leaves
right after it is booked; the bound also absorbs clock skew between hosts sharing a PostgreSQL ledger): then
neither "now" nor the bound is ever earlier than IB's stamp. A process's own requests are counted more tightly
(in flight until their answer, then at it). The same rule covers requests reloaded from an earlier run. The
message-rate limit is per client connection, so only this process's own bookings count for it.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class HistRequest:
    """What IB compares when pacing a historical request. ``contract`` is e.g. ``"756733@SMART"``."""

    contract: str
    what_to_show: str
    bar_size: str = ""
    end: str = ""
    duration: str = ""
    paced: bool = True

    @property
    def weight(self) -> int:
        """What the request counts against IB's limits: BID_ASK twice; 0 for bars over 30 s (not paced by IB)."""
        if not self.paced:
            return 0
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1

    @property
    def burst_key(self) -> tuple[str, str]:
        return (self.contract, self.what_to_show.upper())


@dataclass(frozen=True)
class SentRequest:
    """A request as booked: when it went out (seconds on the planner's clock) and what it was."""

    at: float
    request: HistRequest


@dataclass(frozen=True)
class PacingRules:
    """IB's documented limits, unscaled (seconds)."""

    window_s: float = 600.0
    max_in_window: int = 60
    identical_s: float = 15.0
    burst_s: float = 2.0
    max_in_burst: int = 5
    max_per_s: int = 40
    margin_fraction: float = 0.0005
    margin_min_s: float = 0.001
    logged_lag_fraction: float = 0.005

    def scaled(self, scale: float) -> PacingRules:
        """The same rules with every duration multiplied by ``scale`` (``0.01`` = 100× faster, as in the sim)."""
        if scale <= 0:
            raise ValueError("pacing scale must be positive")
        return replace(self, window_s=self.window_s * scale, identical_s=self.identical_s * scale,
                       burst_s=self.burst_s * scale)

    def margin(self, span_s: float) -> float:
        """Safety margin added to a window of ``span_s`` seconds."""
        return max(self.margin_min_s, self.margin_fraction * span_s)

    @property
    def logged_lag_s(self) -> float:
        """How long after its logged booking another process's request (or a reloaded one) counts as in flight,
        and where it counts afterwards (IB may stamp it that late)."""
        return self.logged_lag_fraction * self.window_s


IB_RULES = PacingRules()


class PacingPlanner:
    """Releases each historical request at the earliest moment IB's rules allow. Pure: the caller supplies times."""

    def __init__(self, scale: float = 1.0, rules: PacingRules = IB_RULES, history: Iterable[SentRequest] = (),
                 others: Iterable[SentRequest] = ()) -> None:
        self.base_rules = rules
        self.rules = rules.scaled(scale)
        self.scale = scale
        self._sent: list[SentRequest] = sorted(history, key=lambda s: s.at)
        self._others: list[SentRequest] = sorted(others, key=lambda s: s.at)

    def copy(self) -> PacingPlanner:
        """An independent planner with the same rules and bookings (for estimates that must not book anything)."""
        return PacingPlanner(self.scale, self.base_rules, self._sent, self._others)

    @property
    def sent(self) -> Sequence[SentRequest]:
        """Every booking that counts: ours where booked, other processes' at their in-flight bound (see module)."""
        return tuple(self._counted(float("inf")))

    @property
    def own(self) -> Sequence[SentRequest]:
        """This process's bookings only."""
        return tuple(self._sent)

    @property
    def others(self) -> Sequence[SentRequest]:
        """Other processes' bookings on the same gateway, at their booking times as logged."""
        return tuple(self._others)

    def set_others(self, bookings: Iterable[SentRequest]) -> None:
        """Replace what other processes booked on this gateway (booking times as logged; those older than
        ``lookback_s`` no longer matter and may be left out)."""
        self._others = sorted(bookings, key=lambda s: s.at)

    def lookback_s(self, paced: bool = True) -> float:
        """How far back from now another process's booking can still delay a request: paced ones for the longest
        window, others (bars over 30 s) only for the identical-request window."""
        span = self.horizon_s if paced else self.rules.identical_s + self.rules.margin(self.rules.identical_s)
        return span + self.rules.logged_lag_s

    def _counted(self, now: float) -> list[SentRequest]:
        """Ours as booked and other processes' in flight (at ``now``) until their bound, merged by time."""
        if not self._others:
            return self._sent
        lag = self.rules.logged_lag_s
        theirs = [SentRequest(min(now, s.at + lag), s.request) for s in self._others]
        return list(heapq.merge(self._sent, theirs, key=lambda s: s.at))

    @property
    def horizon_s(self) -> float:
        """How far back booked requests still matter (the longest window plus its margin)."""
        longest = max(self.rules.window_s, self.rules.identical_s, self.rules.burst_s, 1.0)
        return longest + self.rules.margin(longest)

    def earliest(self, request: HistRequest, now: float) -> float:
        """The first instant ``>= now`` at which ``request`` breaks none of IB's rules."""
        rules = self.rules
        booked = self._counted(now)
        t = now
        t = max(t, self._identical_free(booked, request, rules.identical_s + rules.margin(rules.identical_s)))
        if request.weight == 0:
            return self._message_rate(request, t)
        t = max(t, self._count_free(booked, request.weight, rules.max_in_window,
                                    rules.window_s + rules.margin(rules.window_s)))
        same = [s for s in booked if s.request.burst_key == request.burst_key]
        t = max(t, self._count_free(same, request.weight, rules.max_in_burst,
                                    rules.burst_s + rules.margin(rules.burst_s)))
        return self._message_rate(request, t)

    def _message_rate(self, request: HistRequest, t: float) -> float:
        """Every request is one message, whatever its weight; the rate is real time (not scaled) and per client
        connection (ours only)."""
        rules = self.rules
        if len(self._sent) >= rules.max_per_s:
            t = max(t, self._sent[-rules.max_per_s].at + 1.0 + rules.margin(1.0))
        return t

    def record(self, request: HistRequest, at: float) -> None:
        """Book ``request`` as sent at ``at``. Entries older than the horizon are dropped."""
        bisect.insort(self._sent, SentRequest(at, request), key=lambda s: s.at)
        cutoff = self._sent[-1].at - self.horizon_s
        while self._sent and self._sent[0].at < cutoff:
            self._sent.pop(0)

    def rebook(self, request: HistRequest, sent_at: float, answered_at: float) -> None:
        """Move a booking from its send time to when its answer came back.

        The server stamps a request somewhere between the two (later if it queued it behind others), so counting
        it at the answer time keeps every rule safe however long the server took.
        """
        for i, s in enumerate(self._sent):
            if s.at == sent_at and s.request == request:
                del self._sent[i]
                bisect.insort(self._sent, SentRequest(max(sent_at, answered_at), request), key=lambda x: x.at)
                return

    def wait_s(self, request: HistRequest, now: float) -> float:
        """Seconds to wait from ``now`` before sending ``request``."""
        return self.earliest(request, now) - now

    def plan(self, requests: Iterable[HistRequest], start: float) -> list[float]:
        """Release times for ``requests`` sent in order from ``start``, each booked at its release (zero latency).

        This is the theoretical minimum schedule under IB's rules for that sequence; it mutates the planner.
        """
        times = []
        now = start
        for request in requests:
            now = self.earliest(request, now)
            self.record(request, now)
            times.append(now)
        return times

    @staticmethod
    def _identical_free(booked: Sequence[SentRequest], request: HistRequest, span: float) -> float:
        last = max((s.at for s in booked if s.request == request), default=None)
        return float("-inf") if last is None else last + span

    @staticmethod
    def _count_free(sent: Sequence[SentRequest], weight: int, limit: int, span: float) -> float:
        """Earliest t such that the weight booked in (t - span, t] plus ``weight`` stays within ``limit``."""
        if weight > limit:
            raise ValueError("a single request exceeds the pacing limit")
        total = sum(s.request.weight for s in sent)
        if total + weight <= limit:
            return float("-inf")
        # Drop the oldest entries until the rest plus this request fits; t must pass the last dropped + span.
        excess = total + weight - limit
        for s in sent:
            excess -= s.request.weight
            if excess <= 0:
                return s.at + span
        raise AssertionError("unreachable")  # pragma: no cover

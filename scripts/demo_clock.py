"""Times for the demo: where the sim's clock starts and which sessions to backfill, for any day it is run.

Prints shell assignments (``eval "$(python scripts/demo_clock.py)"``):

- ``SIM_START``: an instant inside a regular NYSE session, at or after the wall clock. The client's idea of "now" is
  the wall clock while the sim serves history only up to ITS clock, so the sim clock must not lag the wall clock;
  inside a session so that a paper order fills at once. It is now when the market is open, else 30 minutes after the
  next session's open (a weekend or a night run then trades "Monday morning", while history stays in the past).
- ``FIRST_SESSION``/``LAST_SESSION``: label dates of the last N complete regular sessions before now (N = argv[1],
  default 5): the backfill range ``--start FIRST --end LAST`` (both inclusive).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from ibkrtool import calendars
from ibkrtool.model import Instrument

UTC = timezone.utc
INTO_SESSION = timedelta(minutes=30)


def sim_start(now: datetime) -> datetime:
    """An instant (UTC) inside a regular SPY session, at or after ``now`` (tz-aware UTC)."""
    spy = Instrument.parse("SPY")
    if calendars.session_of(spy, now) is not None:
        return now
    upcoming = calendars.sessions(spy, now.date(), now.date() + timedelta(days=14))
    return next(s.open for s in upcoming if s.open > now) + INTO_SESSION


def last_sessions(now: datetime, count: int) -> tuple[str, str]:
    """Label dates (ISO) of the first and last of the ``count`` regular sessions completed before ``now``."""
    spy = Instrument.parse("SPY")
    recent = calendars.sessions(spy, now.date() - timedelta(days=3 * count + 14), now.date())
    done = [s for s in recent if s.close <= now][-count:]
    return done[0].date.isoformat(), done[-1].date.isoformat()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    now = datetime.now(UTC).replace(microsecond=0)
    first, last = last_sessions(now, count)
    print(f"SIM_START={sim_start(now).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    print(f"FIRST_SESSION={first}")
    print(f"LAST_SESSION={last}")


if __name__ == "__main__":
    main()

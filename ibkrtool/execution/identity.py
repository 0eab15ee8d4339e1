"""Order identity: the idempotency key an order carries as IB's ``orderRef``, and the keys of earlier versions.

An order is for one mode (simulate | paper | live) in one account, one instrument (IB's conId), one strategy run and
one signal bar. Its key names all five, in at most ``ORDER_REF_MAX`` characters::

    <m><conid>-<digest>-<yyyymmddhhmmss>        e.g.  p756733-3f9a0c1e2b-20240304143500

* ``m``: the mode's letter — ``s`` simulate, ``p`` paper, ``l`` live;
* ``conid``: IB's contract id in decimal (a positive 32-bit int, at most 10 digits); ``x`` for a stand-in conid
  (simulated fills of an instrument IB has not resolved yet, see ``store.contracts.placeholder_conid``);
* ``digest``: the first 10 hex digits of SHA-256 over mode, account, conid and run id — what the key is for, short
  enough for the field (the run id itself is stored with each execution, in ``executions.run_id``);
* the signal bar's start, UTC.

So simulated fills never share a key with paper or live orders, paper never with live, one account never with
another, and one instrument or run never with another. Keys are at most 1 + 10 + 1 + 10 + 1 + 14 = 37 characters.

Before this format, keys were ``<run id>:<yyyymmddThhmmssZ>`` (``legacy_order_ref``), with no mode, account or
instrument; positions CSVs had the run id ``csv-<file name>``. Such a key is still recognised as "already placed",
but only by executions (or working orders) of the same mode, account and instrument: see ``OrderIdentity.legacy``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from ibkrtool.errors import InputError

# IB's documentation (and /work/shared/reference/ib_api_facts.md) states no length limit for orderRef: it is
# unknown, so keys are kept at most 40 characters (they are at most 37).
ORDER_REF_MAX = 40
MODE_LETTERS = {"simulate": "s", "paper": "p", "live": "l"}
_IB_CONID_MAX = 2**31 - 1
_KEY = re.compile(r"^(?P<mode>[spl])(?P<conid>\d{1,10}|x)-(?P<digest>[0-9a-f]{10})-(?P<bar>\d{14})$")
_LEGACY = re.compile(r"^(?P<run>.+):(?P<bar>\d{8}T\d{6}Z)$")


def _utc(signal_ts: datetime) -> datetime:
    if signal_ts.tzinfo is None:
        raise InputError("signal timestamps must be timezone-aware")
    return signal_ts.astimezone(timezone.utc)


def legacy_order_ref(run_id: str, signal_ts: datetime) -> str:
    """The key of earlier versions (and of the live trader): ``<run id>:<signal bar as yyyymmddThhmmssZ>``."""
    return f"{run_id}:{_utc(signal_ts):%Y%m%dT%H%M%SZ}"


@dataclass(frozen=True)
class OrderIdentity:
    """Whose orders: ``mode`` (simulate|paper|live), ``account`` (``SIM`` for simulated fills), ``conid`` (IB's, or
    a stand-in) and ``run_id``; ``legacy_run_id`` is the run id earlier versions gave the same targets (a positions
    CSV's was ``csv-<file name>``), used only to recognise their keys."""

    mode: str
    account: str
    conid: int
    run_id: str
    legacy_run_id: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODE_LETTERS:
            raise InputError(f"mode {self.mode!r} is not one of {', '.join(MODE_LETTERS)}")

    @property
    def digest(self) -> str:
        text = "\x1f".join((self.mode, self.account, str(self.conid), self.run_id))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def key(self, signal_ts: datetime) -> str:
        """The ``orderRef`` of the order for the signal on the bar starting at ``signal_ts`` (tz-aware; written in
        UTC); see the module doc for the format. Raises ``InputError`` for a naive time."""
        conid = str(self.conid) if 0 < self.conid <= _IB_CONID_MAX else "x"
        return f"{MODE_LETTERS[self.mode]}{conid}-{self.digest}-{_utc(signal_ts):%Y%m%d%H%M%S}"

    def legacy(self, signal_ts: datetime) -> str:
        """The old-format key (``<legacy run id>:<bar>``) the same order had before keys named mode and account."""
        return legacy_order_ref(self.legacy_run_id or self.run_id, signal_ts)


def parse_key(ref: str) -> dict[str, str] | None:
    """The parts of a current key (``mode`` letter, ``conid``, ``digest``, ``bar``), or None for any other text."""
    found = _KEY.match(ref)
    return found.groupdict() if found else None


def is_legacy_ref(ref: str) -> bool:
    """True for an old-format key ``<run id>:<yyyymmddThhmmssZ>``."""
    return _KEY.match(ref) is None and _LEGACY.match(ref) is not None

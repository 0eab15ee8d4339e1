"""The only package that talks to TWS / IB Gateway (through ib_async, or ib_insync as a fallback).

data/ and execution/ use ``ibkrtool.ib.gateway.Gateway`` (opened with ``open_gateway``) and nothing else that
touches the client: IB's own types, camelCase and error-code numbers stop here; callers get DataFrames, our
dataclasses, typed connectivity events (``ib/events.py``) and typed errors.
"""

"""The only package that talks to TWS / IB Gateway (through ib_async, or ib_insync as a fallback).

IB's own types and camelCase stop here: callers get DataFrames, dataclasses and typed errors.
"""

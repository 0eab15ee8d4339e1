"""Fixtures for the simulated gateway (filled in by the sim's tests)."""

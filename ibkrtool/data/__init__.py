"""Data pipelines: backfill, collect and resample bars between IB, the store and CSV."""

"""ibkrtool: composable command-line tools for Interactive Brokers data pipelines and strategies."""

from typing import Any


def __getattr__(name: str) -> Any:
    # __version__ is read from the installed metadata on first use: importlib.metadata costs ~25 ms at start-up.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("ibkrtool")
        except PackageNotFoundError:  # running from a source tree that is not installed
            value = "0.0.0+local"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'ibkrtool' has no attribute {name!r}")

"""The front door: one module per command, each with one function taking a typed request and returning a report,
all sharing a ``Workspace``. Python users import them through ``ibkrtool.api``."""

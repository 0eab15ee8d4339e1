"""Per-symbol outcomes of commands that take several symbols: what succeeded is kept, what failed is named."""

from __future__ import annotations

from dataclasses import dataclass, field

from ibkrtool.errors import IbkrToolError


@dataclass(frozen=True)
class SymbolFailure:
    """One symbol the command could not serve, with the error it raised."""

    symbol: str
    error: IbkrToolError

    def as_dict(self) -> dict[str, object]:
        return {"symbol": self.symbol, "error": str(self.error), "exit_code": self.error.exit_code}


@dataclass
class Failures:
    """Failures collected while the other symbols went on."""

    items: list[SymbolFailure] = field(default_factory=list)

    def add(self, symbol: str, error: IbkrToolError) -> None:
        self.items.append(SymbolFailure(symbol, error))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, total: int) -> None:
        """After reporting: raise one error naming every failed symbol, with the first failure's exit code."""
        if not self.items:
            return
        first = self.items[0].error
        named = "; ".join(f"{f.symbol}: {f.error}" for f in self.items)
        error = type(first)(f"{len(self.items)} of {total} symbols failed — {named}")
        raise error

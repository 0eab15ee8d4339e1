#!/usr/bin/env python3
"""Write docs/COMMANDS.md: every command's --help, generated from the CLI itself.

Run `python scripts/command_reference.py` after changing a command; tests/test_cli_docs.py fails while the file is
stale, so the reference cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "COMMANDS.md"
# A fixed width and no colour, so the text is the same on every machine.
HELP_ENV = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def command_paths() -> list[list[str]]:
    """Every command and sub-command of ``ibkrtool``, in --help order."""
    from ibkrtool.cli.main import app

    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


def help_text(path: list[str]) -> str:
    from ibkrtool.cli.main import app

    result = CliRunner().invoke(app, [*path, "--help"], env=HELP_ENV)
    if result.exit_code != 0:
        raise RuntimeError(f"ibkrtool {' '.join(path)} --help exited {result.exit_code}: {result.output}")
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def render() -> str:
    parts = [
        "# ibkrtool command reference",
        "",
        "Generated from each command's `--help` by `scripts/command_reference.py`; a test fails when it is stale.",
        "",
        "```",
        help_text([]),
        "```",
    ]
    for path in command_paths():
        parts += ["", f"## ibkrtool {' '.join(path)}", "", "```", help_text(path), "```"]
    return "\n".join(parts) + "\n"


def main() -> int:
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

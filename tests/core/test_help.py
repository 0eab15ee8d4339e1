"""Every command's help reads well at 80 columns, the command table matches the modules, and ``--help`` stays light.

Broken lines (``broken_lines``), measured on the description text of ``COLUMNS=80 ibkrtool <cmd> --help`` (the
lines between ``Usage:`` and the first panel, ``╭``), for each line L and the line N after it:

1. prose broken mid-sentence: L is not an example, L does not end with ``.``, ``:``, ``!``, ``?`` or `` \\``,
   N is not blank, not an example and indented at least as deep as L (it continues L's paragraph or item),
   and N's first word would have fitted at the end of L (``len(L) + 1 + len(word) <= 79``): the break was not
   needed, which is what re-wrapping a hand-wrapped paragraph produces (a long line, then a short one);
2. an example split: L is an example (its text starts with ``ibkrtool `` or ``$ ``), does not end with a shell
   continuation `` \\``, and N is neither blank nor an example (the rest of the command wrapped onto the next line).
"""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ibkrtool.cli as cli_package
from ibkrtool.cli.helptext import reflow, split_example
from ibkrtool.cli.main import COMMANDS, app, load_command

WIDTH = 80
HELP_ENV = {"COLUMNS": str(WIDTH), "TERM": "dumb", "NO_COLOR": "1"}
SENTENCE_END = (".", ":", "!", "?", " \\")
EXAMPLE = ("ibkrtool ", "$ ")
# Command modules whose help has no examples yet (their owners add them); the test of examples is xfail for them.
AWAITING_EXAMPLES: set[str] = set()


def _paths() -> list[list[str]]:
    """Every command and sub-command, walked as the command reference (docs/COMMANDS.md) walks them."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "command_reference.py"
    spec = importlib.util.spec_from_file_location("command_reference", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.command_paths()


PATHS = _paths()


def help_text(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=HELP_ENV)
    assert result.exit_code == 0, result.output
    return re.sub(r"\x1b\[[0-9;]*m", "", result.output)


def description(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip().startswith("Usage:")), 0)
    end = next((i for i, line in enumerate(lines) if i >= start and line.startswith("╭")), len(lines))
    return [line.rstrip() for line in lines[start:end]]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def broken_lines(text: str, width: int = WIDTH) -> list[str]:
    """The lines of ``text``'s description broken as the module docstring defines."""
    lines = description(text)
    broken = []
    for line, after in pairwise(lines):
        if not line.strip() or not after.strip():
            continue
        example, after_example = line.strip().startswith(EXAMPLE), after.strip().startswith(EXAMPLE)
        if example:
            if not line.endswith(" \\") and not after_example:
                broken.append(f"example split: {line.strip()!r} / {after.strip()!r}")
            continue
        if line.endswith(SENTENCE_END) or after_example or _indent(after) < _indent(line):
            continue
        if len(line) + 1 + len(after.split()[0]) <= width - 1:
            broken.append(f"mid-sentence: {line.strip()!r} / {after.strip()!r}")
    return broken


@pytest.mark.parametrize("path", [[], *PATHS], ids=lambda p: " ".join(p) or "ibkrtool")
def test_help_has_no_broken_lines_at_80_columns(path: list[str]) -> None:
    assert broken_lines(help_text(path)) == []


@pytest.mark.parametrize("path", [[], *PATHS], ids=lambda p: " ".join(p) or "ibkrtool")
def test_flags_show_no_type_placeholder(path: list[str]) -> None:
    text = help_text(path)
    assert "<bool>" not in text and "BOOLEAN" not in text


def _leaves() -> list[list[str]]:
    return [p for p in PATHS if not any(q[: len(p)] == p and len(q) > len(p) for q in PATHS)]


@pytest.mark.parametrize("path", _leaves(), ids=lambda p: " ".join(p))
def test_every_command_has_examples(path: list[str], request: pytest.FixtureRequest) -> None:
    if path[0] in AWAITING_EXAMPLES:
        request.applymarker(pytest.mark.xfail(reason=f"{COMMANDS[path[0]].module} has no examples yet"))
    text = "\n".join(description(help_text(path)))
    assert "Examples:" in text, f"ibkrtool {' '.join(path)} --help shows no examples"
    assert re.search(r"^\s*ibkrtool .*" + re.escape(path[-1]), text, re.M), "no example runs this command"


def test_the_measure_counts_hand_wrapped_paragraphs_and_split_examples() -> None:
    hand_wrapped = (
        " Usage: ibkrtool x\n\n"
        " Bars come from the database (--symbol, --bar-size, --start/--end) or a bars\n"
        " CSV (--input FILE, '-' = stdin).\n"
        " Decisions are taken on each bar's close and filled at the NEXT bar's open\n"
        " (--fill next-open, default) or at\n"
        " that close (--fill close).\n\n"
        " Examples:\n"
        "   ibkrtool backtest pivot-breakout --symbol SPY --bar-size 5m --start 2024-01-01\n"
        " --plot spy.png\n"
        "╭─ Options ─╮\n"
    )
    assert len(broken_lines(hand_wrapped)) == 2


def test_reflow_joins_paragraphs_keeps_examples_and_hangs_items() -> None:
    text = """Summary line.

    Prose wrapped by hand at a
    narrow width.

    Modes:
      --simulate  fill on the bars by --fill with IB's commission model, a description long enough to wrap
                  onto a second line.

    Examples:
      ibkrtool backtest pivot-breakout --symbol SPY --bar-size 5m --start 2024-01-01 --plot spy.png
    """
    out = reflow(text, 60).splitlines()
    assert "Prose wrapped by hand at a narrow width." in out
    items = [line for line in out if line.startswith("  --simulate") or line.startswith(" " * 14)]
    assert all(len(line) <= 60 for line in items) and len(items) >= 2
    example = [line for line in out if "ibkrtool backtest" in line or line.startswith("      --")]
    assert example[0].endswith(" \\") and all(len(line) <= 60 for line in example)


def test_long_examples_split_before_options_with_their_values() -> None:
    lines = split_example('ibkrtool backtest x -s SPY --grid "pivot=3,5,8 ma=20,50" --sort sharpe --split 0.7', 2, 50)
    assert all(len(line) <= 50 for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1])
    assert " ".join(line.rstrip(" \\").strip() for line in lines) == (
        'ibkrtool backtest x -s SPY --grid "pivot=3,5,8 ma=20,50" --sort sharpe --split 0.7')
    assert not any(line.rstrip(" \\").endswith(("--grid", "--sort", "--split")) for line in lines)


def test_command_table_matches_the_modules() -> None:
    modules = set()
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = __import__(f"ibkrtool.cli.{info.name}", fromlist=["register"])
        if callable(getattr(module, "register", None)):
            modules.add(module.__name__)
    assert modules == {entry.module for entry in COMMANDS.values()}
    for name in COMMANDS:
        assert load_command(name).name == name


def test_root_help_imports_no_command_module() -> None:
    code = ("import sys\nfrom ibkrtool.cli.main import app\n"
            "try:\n    app(['--help'], prog_name='ibkrtool')\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'pandas', 'numpy', 'sqlalchemy', "
            "'ib_async', 'exchange_calendars', 'matplotlib'} or m.startswith('ibkrtool.cli.') and m.split('.')[-1] "
            "not in {'main', 'options', 'render', 'signals', 'helptext'})\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stderr, result.stderr


def _ibkrtool() -> str:
    script = Path(sys.executable).with_name("ibkrtool")
    if not script.exists():
        pytest.skip("the ibkrtool console script is not installed beside this python")
    return str(script)


def test_show_completion_prints_a_bash_script() -> None:
    result = subprocess.run([_ibkrtool(), "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_IBKRTOOL_COMPLETE" in result.stdout and "complete " in result.stdout


def test_completion_of_command_names_uses_the_table() -> None:
    env = {"_IBKRTOOL_COMPLETE": "complete_bash", "COMP_WORDS": "ibkrtool ba", "COMP_CWORD": "1"}
    import os

    result = subprocess.run([_ibkrtool()], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert "backfill" in result.stdout and "backtest" in result.stdout

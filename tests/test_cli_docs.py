"""Every command has --help, and every command is documented in the README."""

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ibkrtool.cli.main import app

README = Path(__file__).resolve().parent.parent / "README.md"


def _command_paths() -> list[list[str]]:
    root = get_command(app)
    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


COMMANDS = _command_paths()


def test_some_commands_are_registered() -> None:
    assert COMMANDS, "no command registered"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_command_is_in_readme(path: list[str]) -> None:
    assert f"ibkrtool {' '.join(path)}" in README.read_text(), f"README does not mention 'ibkrtool {' '.join(path)}'"


def test_typer_is_only_imported_by_the_cli() -> None:
    package = Path(__file__).resolve().parent.parent / "ibkrtool"
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if "cli" not in p.relative_to(package).parts
        and any(line.startswith(("import typer", "from typer", "import rich", "from rich"))
                for line in p.read_text().splitlines())
    ]
    assert offenders == [], f"typer/rich imported outside ibkrtool/cli: {offenders}"


def test_ib_client_is_only_imported_by_ib_package() -> None:
    package = Path(__file__).resolve().parent.parent / "ibkrtool"
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.relative_to(package).parts[0] != "ib"
        and any(line.startswith(("import ib_async", "from ib_async", "import ib_insync", "from ib_insync"))
                for line in p.read_text().splitlines())
    ]
    assert offenders == [], f"ib_async imported outside ibkrtool/ib: {offenders}"


def test_sim_never_imports_the_client_side() -> None:
    """ARCHITECTURE rule 8: the sim is an independent implementation of IB's rules, so it imports none of ours."""
    import ast

    sim = Path(__file__).resolve().parent.parent / "ibkrtool" / "sim"
    forbidden = ("ibkrtool.ib", "ibkrtool.calendars", "ibkrtool.data", "ibkrtool.store", "ibkrtool.execution")
    offenders = []
    for path in sim.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == [], f"sim imports client-side modules (ARCHITECTURE rule 8): {offenders}"


def test_command_reference_is_up_to_date() -> None:
    """docs/COMMANDS.md is generated from --help; regenerate it with `python scripts/command_reference.py`."""
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("command_reference", root / "scripts" / "command_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stored = (root / "docs" / "COMMANDS.md").read_text()
    assert stored == module.render(), "docs/COMMANDS.md is stale: run `python scripts/command_reference.py`"

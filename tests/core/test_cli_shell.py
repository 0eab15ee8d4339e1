"""The CLI shell: global options, version, and the one place where errors become exit codes."""

import typer
from typer.testing import CliRunner

from ibkrtool import __version__
from ibkrtool.cli.main import IbkrGroup, app, main
from ibkrtool.cli.options import settings
from ibkrtool.errors import GatewayError, InputError, StoreError

runner = CliRunner()


def _app_raising(exc: BaseException) -> typer.Typer:
    test_app = typer.Typer(cls=IbkrGroup, callback=main)

    @test_app.command()
    def boom(ctx: typer.Context) -> None:
        typer.echo(settings(ctx).ib_port)
        raise exc

    @test_app.command()
    def other() -> None:  # a second command keeps typer in group mode
        pass

    return test_app


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ibkrtool {__version__}"


def test_help_lists_global_options() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for option in ("--db", "--ib-host", "--ib-port", "--client-id", "--config", "--traceback", "--version"):
        assert option in result.output


def test_typed_errors_map_to_exit_codes_with_one_line() -> None:
    for exc, code in ((InputError("bad date"), 3), (GatewayError("no gateway"), 4), (StoreError("no db"), 5)):
        result = runner.invoke(_app_raising(exc), ["boom"])
        assert result.exit_code == code, result.output
        assert f"error: {exc}" in result.output
        assert "Traceback" not in result.output


def test_unexpected_errors_exit_1_and_traceback_flag_reraises() -> None:
    result = runner.invoke(_app_raising(ZeroDivisionError("x")), ["boom"])
    assert result.exit_code == 1
    assert "unexpected ZeroDivisionError" in result.output and "--traceback" in result.output
    result = runner.invoke(_app_raising(ZeroDivisionError("x")), ["--traceback", "boom"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_interrupt_exits_130() -> None:
    result = runner.invoke(_app_raising(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == 130


def test_global_flags_reach_commands_and_passwords_are_masked_in_errors() -> None:
    result = runner.invoke(_app_raising(StoreError("cannot open postgresql://u:hunter2@h:5432/d")),
                           ["--ib-port", "4002", "boom"])
    assert result.output.splitlines()[0] == "4002"
    assert "hunter2" not in result.output and "u:***@h" in result.output


def test_bad_config_file_exits_3(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("ib_port = 'abc'\n")
    result = runner.invoke(_app_raising(InputError("unused")), ["--config", str(cfg), "boom"])
    assert result.exit_code == 3
    assert "must be a number" in result.output

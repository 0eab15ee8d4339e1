"""The CLI shell: global options, version, and the one place where errors become exit codes."""

import json
import logging
import math
import re

import typer
from typer.testing import CliRunner

from ibkrtool import __version__
from ibkrtool.cli import render
from ibkrtool.cli.main import IbkrGroup, app, main
from ibkrtool.cli.options import settings
from ibkrtool.cli.signals import Terminated
from ibkrtool.errors import GatewayError, IbRefused, InputError, StoreError

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


def test_unexpected_errors_exit_1_and_traceback_flag_shows_the_stack() -> None:
    result = runner.invoke(_app_raising(ZeroDivisionError("x")), ["boom"])
    assert result.exit_code == 1
    assert "unexpected ZeroDivisionError" in result.output and "--traceback" in result.output
    result = runner.invoke(_app_raising(ZeroDivisionError("x")), ["--traceback", "boom"])
    assert result.exit_code == 1
    assert "Traceback" in result.output and "ZeroDivisionError" in result.output


def test_traceback_flag_keeps_the_exit_code() -> None:
    for exc, code in ((InputError("bad date"), 3), (StoreError("no db"), 5), (IbRefused("no"), 6)):
        result = runner.invoke(_app_raising(exc), ["--traceback", "boom"])
        assert result.exit_code == code, result.output
        assert "Traceback" in result.output and result.output.strip().splitlines()[-1] == f"error: {exc}"


def test_terminated_exits_143_with_one_line() -> None:
    result = runner.invoke(_app_raising(Terminated()), ["boom"])
    assert result.exit_code == 143
    assert result.output.strip().splitlines()[-1] == "error: terminated"


def test_log_lines_off_a_terminal_are_plain_iso_utc() -> None:
    test_app = typer.Typer(cls=IbkrGroup, callback=main)

    @test_app.command()
    def warn() -> None:
        logging.getLogger("ibkrtool.x").warning("disk almost full: %d%%", 95)
        logging.getLogger("ib_async.client").error("API connection failed")

    @test_app.command()
    def other() -> None:
        pass

    lines = runner.invoke(test_app, ["warn"]).output.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ WARNING ibkrtool.x: disk almost full: 95%", lines[0])


def test_quiet_silences_tables_summaries_and_progress_not_errors() -> None:
    test_app = typer.Typer(cls=IbkrGroup, callback=main)

    @test_app.command()
    def talk() -> None:
        render.table([{"a": 1}], ["a"], title="t")
        render.say("summary line")
        with render.progress() as bar:
            bar.update(bar.add_task("x", total=2), completed=2)
        raise InputError("still shown")

    @test_app.command()
    def other() -> None:
        pass

    loud = runner.invoke(test_app, ["talk"]).output
    assert "summary line" in loud and "error: still shown" in loud
    quiet = runner.invoke(test_app, ["-q", "talk"]).output
    assert quiet.strip().splitlines() == ["error: still shown"]


def test_tables_go_to_stderr_when_stdout_carries_data(capsys) -> None:
    render.configure_logging(0)
    render.stdout_carries_data(True)
    render.print_json({"pnl": -78.00000000000864, "rows": [0.1 + 0.2]})
    render.table([{"pnl": -78.00000000000864}], ["pnl"])
    out, err = capsys.readouterr()
    assert json.loads(out) == {"pnl": -78.0, "rows": [0.3]}
    assert "-78.0" in err and "00000" not in err
    render.configure_logging(0)


def test_clean_number() -> None:
    assert render.clean_number(-78.00000000000864) == -78.0
    assert render.clean_number(1234567.891) == 1234567.891
    assert render.clean_number(5) == 5 and render.clean_number("x") == "x"
    assert math.isnan(render.clean_number(float("nan")))


def test_plain_progress_prints_at_most_every_few_seconds(capsys) -> None:
    now = [0.0]
    bar = render.PlainProgress(every_s=5, clock=lambda: now[0])
    task = bar.add_task("backfill", total=10, detail="")
    for step in range(10):
        now[0] = step * 2.0
        bar.update(task, completed=step + 1, detail=f"{step} bars")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0].endswith("backfill: 4/10 3 bars")


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

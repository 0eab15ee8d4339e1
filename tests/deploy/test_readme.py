"""The README tells the truth: every `$ ` command in its fenced blocks runs, in order, against `ibkrtool sim`
started as the README starts it, and every output line the README shows under a command (tables aside) appears in
what the command printed — figures included. Its Python API example runs too.

How a block is read:
- `$ ibkrtool sim … &` (or without `&`) starts a real sim process; its `--port N` is replaced by a free port, and
  N is replaced by that port in every later command of the README (`--ib-port N`, `IBKRTOOL_IB_PORT=N`).
- `$ export K=V …` sets environment variables for the commands after it.
- Any other `$ …` line (with `\\` continuations) runs under bash in a scratch folder; it must exit 0.
- Lines after a command up to the next `$` are its shown output. Lines drawing tables (box characters) or progress
  bars are not compared; in the others `…` stands for any text, and durations (`6.6 s`) for any duration.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TABLE_CHARS = set("│┃╭╰┏┗━─╇┡┣┠┨╿╽┌└")
DURATION = re.compile(r"\d+(?:\.\d+)? s\b")


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)


def fenced_blocks(text: str, language: str = "") -> Iterator[list[str]]:
    """The lines of each fenced block whose info string is ``language`` ('' = none)."""
    fence: str | None = None  # the info string of the block we are in, None outside blocks
    block: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, block = line[3:].strip(), []
            else:
                if fence == language:
                    yield block
                fence = None
        elif fence is not None:
            block.append(line)


def steps(block: list[str]) -> list[Step]:
    out: list[Step] = []
    pending = ""
    for line in block:
        if pending:
            pending += "\n" + line
            if not line.endswith("\\"):
                out.append(Step(pending))
                pending = ""
            continue
        if line.startswith("$ "):
            command = line[2:]
            if command.endswith("\\"):
                pending = command
            else:
                out.append(Step(command))
        elif out and line.strip():
            out[-1].shown.append(line)
    return out


def readme_steps() -> list[Step]:
    text = (ROOT / "README.md").read_text()
    in_blocks = [s for block in fenced_blocks(text) for s in steps(block)]
    return [s for s in in_blocks if s.command]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _shown_matches(shown: str, printed: str) -> bool:
    if set(shown) & TABLE_CHARS:
        return True
    pattern = ".*?".join(re.escape(DURATION.sub("\0", part)).replace("\0", r"\d+(?:\.\d+)? s")
                         for part in shown.strip().split("…"))
    return re.search(pattern, printed) is not None


class Tour:
    """Runs the steps in one scratch folder, with the sims they start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IBKRTOOL_")}
        self.env.update(PATH=f"{BIN}{os.pathsep}{self.env['PATH']}", COLUMNS="200")
        self.ports: dict[str, str] = {}
        self.sims: list[subprocess.Popen] = []

    def close(self) -> None:
        for sim in self.sims:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=30)

    def _ported(self, command: str) -> str:
        for readme_port, port in self.ports.items():
            command = re.sub(rf"\b{readme_port}\b", port, command)
        return command

    def run(self, step: Step) -> str:
        command = step.command.rstrip()
        if command.startswith("ibkrtool sim"):
            return self._start_sim(command.rstrip("&").strip())
        command = self._ported(command)
        if command.startswith("export "):
            for pair in command[len("export "):].split():
                key, _, value = pair.partition("=")
                self.env[key] = value
            return ""
        done = subprocess.run(["bash", "-c", command], cwd=self.folder, env=self.env, capture_output=True, text=True,
                              timeout=600)
        printed = done.stdout + done.stderr
        assert done.returncode == 0, f"README command failed (exit {done.returncode}): {command}\n{printed[-3000:]}"
        return printed

    def _start_sim(self, command: str) -> str:
        found = re.search(r"--port (\d+)", command)
        assert found, command
        port = str(_free_port())
        self.ports[found[1]] = port
        args = command.replace(f"--port {found[1]}", f"--port {port}").split()[1:]
        sim = subprocess.Popen([str(BIN / "ibkrtool"), *args], cwd=self.folder, env=self.env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.sims.append(sim)
        assert sim.stderr is not None
        deadline = time.monotonic() + 60
        for line in sim.stderr:
            if "listening on" in line:
                break
            assert time.monotonic() < deadline and sim.poll() is None, f"sim did not start: {line}"
        return ""


def test_readme_steps_are_found() -> None:
    found = readme_steps()
    assert any(s.command.startswith("ibkrtool sim") for s in found)
    assert sum(s.command.startswith("ibkrtool ") for s in found) >= 15


def test_every_readme_command_runs_and_prints_what_the_readme_shows(tmp_path: Path, rscript: str) -> None:
    tour = Tour(tmp_path)
    try:
        for step in readme_steps():
            printed = tour.run(step)
            for line in step.shown:
                assert _shown_matches(line, printed), (
                    f"README shows, under `{step.command}`:\n  {line}\nbut the command printed:\n{printed[-3000:]}")
    finally:
        tour.close()


def test_the_python_api_example_runs(tmp_path: Path) -> None:
    """The README's ```python block, against a sim on a free port, in a scratch folder."""
    text = (ROOT / "README.md").read_text()
    (block,) = list(fenced_blocks(text, "python"))
    tour = Tour(tmp_path)
    try:
        tour.run(Step("ibkrtool sim --port 7497 --start 2026-11-20T15:00:00Z --pacing-scale 0.01"))
        code = tour._ported("\n".join(block))
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=tour.env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip(), "the example prints its results"
    finally:
        tour.close()

"""The README's install blocks, run as written in fresh copies of the checkout, on threads
started as soon as the session has collected the tests that need them (tests/docs/conftest.py):
pip mostly waits on the network, so the installs cost the suite little while other tests run.
Under pytest-xdist one worker installs for all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs import pageblocks

ROOT = Path(__file__).resolve().parents[2]


def install_blocks(page: Path) -> list[str]:
    return [b.text for b in pageblocks.blocks(page, ROOT) if b.directive == "install"]


README_INSTALLS = install_blocks(ROOT / "README.md")


def fresh_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_install_block(checkout: Path, block: str) -> None:
    """The block, as written, in bash in the checkout (``set -e``: any failing line fails)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # The test venv's bin comes off PATH: `python3` is the machine's, as for a new user.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_COMPILE"] = "1"  # saves seconds; changes nothing the lines do
    proc = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{block}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )


@dataclass(frozen=True)
class Installed:
    checkout: Path

    @property
    def python(self) -> Path:
        return self.checkout / ".venv" / "bin" / "python"


class Background:
    """The README's two install blocks, each in a fresh copy of the checkout under ``base``.

    One process runs them (on threads) and writes ``<name>.result`` beside each copy when its
    block is done ("ok", or the failure); under pytest-xdist every worker calls
    :func:`start_installs` with the same ``base``, the first to create it runs the installs and
    the others read the result files."""

    def __init__(self, base: Path) -> None:
        try:
            base.mkdir(parents=True)
        except FileExistsError:
            self.base, self.threads = base, []  # another worker installs
            return
        self.base = base
        self.threads = [
            threading.Thread(target=self._install, args=(name, block), daemon=True)
            for name, block in zip(INSTALL_NAMES, README_INSTALLS, strict=True)
        ]
        for thread in self.threads:
            thread.start()

    def _install(self, name: str, block: str) -> None:
        try:
            checkout = fresh_copy(self.base / f"install-from-{name}")
            run_install_block(checkout, block)
            outcome = "ok"
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        partial = self.base / f"{name}.result.partial"
        partial.write_text(outcome)
        partial.rename(self.base / f"{name}.result")

    def finish(self) -> None:
        """Let the installs this process runs end (a worker that exits first kills them)."""
        for thread in self.threads:
            thread.join()

    def wait(self, timeout: float = 1800) -> dict[str, Installed]:
        self.finish()
        deadline = time.monotonic() + timeout
        made = {}
        for name in INSTALL_NAMES:
            result = self.base / f"{name}.result"
            while not result.exists():
                assert time.monotonic() < deadline, f"no {result} after {timeout} s"
                time.sleep(0.2)
            outcome = result.read_text()
            assert outcome == "ok", f"installing from the {name} failed: {outcome}"
            made[name] = Installed(self.base / f"install-from-{name}")
        return made


INSTALL_NAMES = ("checkout", "wheel")
_background: Background | None = None


def installs_dir(config: pytest.Config) -> Path:
    """Where the installs go: one directory for the whole run, xdist workers included (a
    worker's temporary directory is ``popen-gwN`` inside the controller's)."""
    basetemp = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    shared = basetemp.parent if hasattr(config, "workerinput") else basetemp
    return shared / "readme-installs"


def start_installs(config: pytest.Config) -> None:
    global _background
    if _background is None:
        _background = Background(installs_dir(config))


def finish_installs() -> None:
    if _background is not None:
        _background.finish()


def state() -> Background:
    assert _background is not None, "start_installs() was not called"
    return _background

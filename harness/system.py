"""System packages the benchmark needs: broker servers (and Chromium for report tests).

As root, missing packages are installed with apt-get; otherwise the exact
command to run is printed and the harness later skips what cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from core.brokers import KINDS

TEST_PACKAGES = {"chromium": lambda: shutil.which("chromium"),
                 "docker-compose": lambda: shutil.which("docker-compose")}


def broker_packages() -> dict[str, Callable[[], str | None]]:
    """Each broker kind's apt package and how to tell it is installed."""
    return {kind.apt_package: kind.find_binary for kind in KINDS.values()}


def missing(with_test_tools: bool) -> list[str]:
    wanted = broker_packages()
    if with_test_tools:
        wanted.update(TEST_PACKAGES)
    return [name for name, present in wanted.items() if not present()]


def ensure(with_test_tools: bool = False) -> list[str]:
    """Install what is missing when possible; return the messages to show."""
    absent = missing(with_test_tools)
    if not absent:
        return []
    command = f"apt-get install -y {' '.join(absent)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return [f"missing: {', '.join(absent)}. Install with `sudo apt-get update && sudo "
                f"{command}`, or run the brokers with `docker compose up -d` and pass "
                f"{'/'.join(kind.flag() for kind in KINDS.values())}. Backends whose broker "
                "is missing are skipped."]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                           *absent], check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return [f"`{command}` failed: {last}"]
    _stop_distro_services()
    return [f"installed {', '.join(absent)}"]


def _stop_distro_services() -> None:
    """A broker package may start a system-wide server of its name; the harness runs its own."""
    for service in broker_packages():
        if shutil.which("systemctl"):
            subprocess.run(["systemctl", "disable", "--now", service], capture_output=True,
                           check=False)
        elif shutil.which("service"):
            subprocess.run(["service", service, "stop"], capture_output=True, check=False)

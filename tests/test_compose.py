"""docker-compose.yml is valid for Compose and publishes brokers on loopback only."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) when it works, else Debian's docker-compose (v1)."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                               timeout=60, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def port_items(config: str) -> list[str]:
    """Every entry under a `ports:` key, short ("127.0.0.1:6379:6379") or long syntax
    (a block with host_ip:), from Compose YAML as written or as `config` prints it."""
    lines = config.splitlines()
    items: list[str] = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)ports:\s*$", line)
        if not match:
            continue
        indent = len(match.group(1))
        for following in lines[i + 1:]:
            if not following.strip() or following.lstrip().startswith("#"):
                continue
            depth = len(following) - len(following.lstrip())
            if depth < indent or (depth == indent and not following.lstrip().startswith("- ")):
                break
            if following.lstrip().startswith("- "):
                items.append(following.strip()[2:])
            elif items:
                items[-1] += "\n" + following.strip()
    return items


def host_ip(item: str) -> str | None:
    long_form = re.search(r"host_ip:\s*['\"]?([^'\"\s]+)", item)
    if long_form:
        return long_form.group(1)
    short = re.match(r"['\"]?(\d+\.\d+\.\d+\.\d+):\d+", item.split("#")[0].strip())
    return short.group(1) if short else None


def test_port_parser_reads_both_syntaxes() -> None:
    text = ("services:\n  a:\n    ports:\n    - 127.0.0.1:1:1/tcp\n    - \"2:2\"\n"
            "  b:\n    ports:\n      - mode: ingress\n        host_ip: 127.0.0.1\n"
            "        target: 3\n      - target: 4\n        published: \"4\"\n    image: x\n")
    assert [host_ip(i) for i in port_items(text)] == ["127.0.0.1", None, "127.0.0.1", None]


def test_compose_file_is_valid_and_loopback_only() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed "
                    "(make test installs docker-compose via `harness setup --test-tools`)")
    check = subprocess.run([*command, "-f", str(COMPOSE_FILE), "config", "-q"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stderr
    resolved = subprocess.run([*command, "-f", str(COMPOSE_FILE), "config"],
                              capture_output=True, text=True, timeout=120, check=False)
    assert resolved.returncode == 0, resolved.stderr
    for text in (resolved.stdout, COMPOSE_FILE.read_text()):
        items = port_items(text)
        assert len(items) == 4, items  # redis 6379, rabbitmq 5672 and 15672, postgres 5432
        assert all(host_ip(i) == "127.0.0.1" for i in items), items
    for needle in ("redis-cli", "rabbitmq-diagnostics", "pg_isready", "image: redis:7",
                   "image: rabbitmq:3-management", "image: postgres:15"):
        assert needle in resolved.stdout


WORKFLOW = REPO / ".github" / "workflows" / "benchmark.yml"


def workflow_env(text: str) -> dict[str, str]:
    """The workflow's top-level env values (one-line or folded '>-' blocks)."""
    env: dict[str, str] = {}
    block = text.split("\nenv:\n", 1)[1].split("\n\n", 1)[0]
    name = None
    for line in block.splitlines():
        if re.match(r"^  [A-Z_]+:", line):
            name, value = line.strip().split(":", 1)
            env[name] = "" if value.strip() == ">-" else value.strip()
        elif name and line.startswith("    "):
            env[name] = f"{env[name]} {line.strip()}".strip()
    return env


def test_every_harness_command_of_the_workflow_parses() -> None:
    """The workflow runs the commands a user runs: each `python -m harness ...` line, its
    variables filled in, is accepted by the harness's own parser."""
    from harness.cli import build_parser

    text = WORKFLOW.read_text()
    env = {**workflow_env(text), "NOISE": "", "GITHUB_WORKSPACE": "/w"}
    commands = re.findall(r"python -m harness (.+)", text)
    assert len(commands) >= 8
    for command in commands:
        command = re.sub(r"\$\{\{.*?\}\}", "", command)  # GitHub expressions: CI-only flags
        command = re.split(r"\|\||>>|&&", command)[0]
        words = shlex.split(re.sub(r"\$([A-Z_]+)", lambda m: env[m[1]], command))
        build_parser().parse_args(words)  # SystemExit (exit 2) on a flag it does not know

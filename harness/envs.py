"""Per-backend Python environments: .venvs/<family>, built from the pyproject extra.

Backends whose pins conflict (arq wants redis<6, celery's Redis transport
wants redis>=6.4) never share an environment. The project itself is not
installed there: drivers and workers import it through PYTHONPATH, so an
environment holds exactly the extra's pinned requirements.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("QB_VENVS", REPO_ROOT / ".venvs"))
CORE = "core"
MARKER = ".queuebench-requirements"
LOCAL = "local"  # the variant label of --with checkouts
WITH_PACKAGES = ("celery", "kombu", "dramatiq", "arq", "rq", "redis", "pika")
ALIASES = {"redis-py": "redis"}
CHECKOUTS: dict[str, Path] = {}  # package -> local checkout, set by run --with


class EnvError(RuntimeError):
    """An environment could not be built; the message says how to fix it."""


def pinned(family: str) -> list[str]:
    """The pinned requirements of a family, from pyproject.toml's extras."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    if family not in extras:
        raise EnvError(f"no extra named {family!r} in pyproject.toml")
    return list(extras[family])


def requirement_name(requirement: str) -> str:
    """'celery[redis]==5.7.0' -> 'celery'."""
    return re.split(r"[\[=<>!~ ;@]", requirement, maxsplit=1)[0].strip().lower()


def requirements(family: str) -> list[str]:
    """A family's requirements. A variant family "<family>@<label>" (a backend named
    "<backend>@<label>") differs in one place: label LOCAL puts the --with checkouts in
    place of their pins (or beside them), any other label is a version of the family's
    first requirement, its library."""
    base, _, label = family.partition("@")
    reqs = pinned(base)
    if not label:
        return reqs
    if label != LOCAL:
        return [f"{unpinned(reqs[0])}=={label}", *reqs[1:]]
    heads = {requirement_name(r): unpinned(r) for r in reqs}
    return ([r for r in reqs if requirement_name(r) not in CHECKOUTS]
            + [f"{heads.get(name, name)} @ {path.as_uri()}"
               for name, path in sorted(CHECKOUTS.items())])


def unpinned(requirement: str) -> str:
    """'celery[redis]==5.7.0' -> 'celery[redis]'."""
    return re.split(r"[=<>!~ ;@]", requirement, maxsplit=1)[0].strip()


def add_checkout(text: str) -> tuple[str, Path]:
    """--with PACKAGE=PATH: a local checkout of a library (redis-py is 'redis')."""
    name, sep, path = text.partition("=")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if not sep or name not in WITH_PACKAGES:
        shown = [next((a for a, n in ALIASES.items() if n == p), p) for p in WITH_PACKAGES]
        raise EnvError(f"--with {text!r}: expected PACKAGE=PATH, PACKAGE one of "
                       f"{', '.join(shown)}")
    if not path.strip():
        raise EnvError(f"--with {text!r}: no PATH after '='")
    checkout = Path(path).expanduser().resolve()
    if not ((checkout / "pyproject.toml").exists() or (checkout / "setup.py").exists()):
        raise EnvError(f"--with {text!r}: {checkout} is not a Python project "
                       "(no pyproject.toml or setup.py)")
    if name in CHECKOUTS and CHECKOUTS[name] != checkout:
        raise EnvError(f"--with {name} given twice ({CHECKOUTS[name]} and {checkout}): "
                       "one checkout per package")
    CHECKOUTS[name] = checkout
    return name, checkout


def python_of(family: str) -> Path:
    """Interpreter of a family's environment (the coordinator's own for core)."""
    if family == CORE:
        return Path(sys.executable)
    return VENVS / family / "bin" / "python"


def _fingerprint(family: str) -> str:
    text = json.dumps([sys.version_info[:2], requirements(family)])
    return hashlib.sha256(text.encode()).hexdigest()


def status(family: str) -> str | None:
    """None when the environment is built and current, else what is wrong."""
    if family == CORE:
        return None
    marker = VENVS / family / MARKER
    if not python_of(family).exists():
        return f"environment {VENVS / family} is not built: run `make setup`"
    if not marker.exists() or marker.read_text() != _fingerprint(family):
        return f"environment {VENVS / family} is out of date: run `make setup`"
    return None


# Run in an environment: the distributions of its pins that are not installed at the
# pinned version (the marker file says what was asked, this what is there).
_CHECK_INSTALLED = """
import importlib.metadata as meta, sys
wrong = []
for req in sys.argv[1:]:
    name, _, want = req.partition("==")
    name = name.split("[")[0]  # celery[redis]: the distribution celery
    try:
        got = meta.version(name)
    except meta.PackageNotFoundError:
        got = None
    if got is None or (want and got != want):
        wrong.append(f"{name} {got or 'missing'} (pinned {want or 'any'})")
print("; ".join(wrong))
"""


def installed_problem(family: str) -> str | None:
    """What the environment lacks of its pins (a marker can outlive a package someone
    removed); None when every pinned distribution is there at its version. Pins only: a
    --with checkout (a path) is not checked."""
    if family == CORE:
        return None
    pins = [r for r in requirements(family) if "==" in r]
    try:
        done = subprocess.run([str(python_of(family)), "-c", _CHECK_INSTALLED, *pins],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"environment {VENVS / family} cannot run: {exc}"
    if done.returncode:
        return f"environment {VENVS / family} cannot run: {done.stderr.strip()[-200:]}"
    return f"not as pinned: {done.stdout.strip()} (`make setup` rebuilds it)" \
        if done.stdout.strip() else None


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def build(family: str, quiet: bool = True, force: bool = False) -> None:
    """Create or refresh .venvs/<family> (idempotent unless `force`: a current one is
    left alone)."""
    if status(family) is None and not force:
        return
    target = VENVS / family
    reqs = requirements(family)
    uv = _uv()
    try:
        if uv:
            subprocess.run([uv, "venv", "-q", "--allow-existing", "--python", sys.executable,
                            str(target)], check=True, capture_output=quiet)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(python_of(family)),
                            *(["--reinstall"] if force else []), *reqs], check=True,
                           capture_output=quiet)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True,
                           capture_output=quiet)
            subprocess.run([str(python_of(family)), "-m", "pip", "install", "-q",
                            "--disable-pip-version-check",
                            *(["--force-reinstall"] if force else []), *reqs], check=True,
                           capture_output=quiet)
    except subprocess.CalledProcessError as exc:
        if not (target / MARKER).exists():  # never built: leave no half-made environment
            shutil.rmtree(target, ignore_errors=True)
        lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        # uv draws its reasons in boxes and arrows: keep the words, on one line
        detail = [text for line in lines if (text := " ".join(line.split()).strip(" ×╰─▶│|"))]
        raise EnvError(f"could not build .venvs/{family} ({' '.join(reqs)}): "
                       f"{'; '.join(detail)}") from None
    (target / MARKER).write_text(_fingerprint(family))


def installed_versions(family: str) -> dict[str, str]:
    """name -> version of every distribution in a family's environment."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))")
    out = subprocess.run([str(python_of(family)), "-c", code], capture_output=True, text=True,
                         check=False, timeout=60)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        return {}

"""Backend registry, found by scanning: every adapters/<library>/backend.toml.

A backend is one folder: its adapter, its worker entry point if it has one,
and a backend.toml that declares the backend(s) the folder provides. The
registry is plain data read with the standard library, so the coordinator
imports no backend library; the adapter class is imported only inside the
driver, in the backend's own environment (.venvs/<family>).

backend.toml: keys at the top level hold for every [[backend]] of the file,
and a [[backend]] entry may override any of them (tables merge key by key).

    family = "celery"                # pyproject extra (.venvs/<family>), or "core"
    adapter = "adapter:CeleryAdapter"  # module of this folder : class
    key_packages = ["celery", "kombu"] # shown in the report's environment table
    [profiles]                       # one line per profile (adapters.base.PROFILES)
    default = "..."
    reliable = "..."
    [crash]                          # what the crash scenario needs
    timeout_options = ["visibility_timeout_s"]  # set to its shortened timeout
    options = {}                     # further options of its cells
    loss_on_worker_kill = "..."      # why jobs are lost when a worker is killed
    rerun_on_worker_kill = "..."     # why they run again ("{timeout_s:.0f}": the timeout)
    loss_on_node_kill = "..."        # the same two for node-kill, where the cause differs
    rerun_on_node_kill = "..."
    redelivery_extra_s = 10.0        # the library adds this to the timeout before it re-runs
    timeout_profiles = ["reliable"]  # where the timeouts lead to a re-run (default: all)
    node_is_job_process = "..."      # why node-kill = job-process-kill (no pool): run once
    [[backend]]
    name = "celery-redis"            # the name on the command line
    order = 40                       # place in the registry (lists, tables, charts)
    description = "..."
    broker = "redis"                 # broker kind; none when absent
    ceiling = "redis-raw"            # the raw backend on the same broker
    colour = "#d62728"               # fixed chart colour; a spare one when absent
    layout_sweep = true              # a run first times 1, 2, 4... consumer processes
                                     # (options["processes"]) and keeps the fastest
    poll_s = 0.5                     # a busy worker takes new jobs only on this timer
                                     # (the observer effect's segments span two)
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.base import PROFILES

if TYPE_CHECKING:
    from adapters.base import Adapter

ROOT = Path(__file__).resolve().parent
FILE_NAME = "backend.toml"
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class BackendFileError(ValueError):
    """A backend.toml that cannot be used; the message names the file."""


@dataclass(frozen=True)
class CrashInfo:
    """What the crash scenario needs to know about a backend."""

    timeout_options: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    loss_on_worker_kill: str | None = None
    rerun_on_worker_kill: str | None = None
    loss_on_node_kill: str | None = None
    rerun_on_node_kill: str | None = None
    redelivery_extra_s: float = 0.0
    node_is_job_process: str | None = None
    # The profiles in which the timeouts lead to a re-delivery (None: every profile). In
    # the others nothing re-runs a dead worker's job, and its cells wait no timeout.
    timeout_profiles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BackendInfo:
    name: str
    family: str
    broker: str | None
    adapter: str  # "package.module:Class"
    description: str
    ceiling: str | None = None  # the raw backend on the same broker
    order: int = 0
    key_packages: tuple[str, ...] = ()
    profiles: Mapping[str, str] = field(default_factory=dict)
    colour: str | None = None
    layout_sweep: bool = False  # see harness/ceiling_layout.py
    poll_s: float | None = None  # see harness/observer.py
    crash: CrashInfo = CrashInfo()
    source: Path | None = None  # the backend.toml that declares it

    def load(self) -> type[Adapter]:
        """Import the adapter class (in the backend's own environment)."""
        module_name, class_name = self.adapter.split(":")
        return getattr(importlib.import_module(module_name), class_name)


# key -> (type, what it must be); the same keys at the top level and in [[backend]]
KEYS: dict[str, tuple[type, str]] = {
    "name": (str, "a string"), "order": (int, "an integer"), "description": (str, "a string"),
    "family": (str, "a string"), "adapter": (str, 'a string "module:Class"'),
    "broker": (str, "a string"), "ceiling": (str, "a string"),
    "colour": (str, 'a colour "#rrggbb"'), "key_packages": (list, "a list of strings"),
    "profiles": (dict, "a table"), "crash": (dict, "a table"),
    "layout_sweep": (bool, "true or false"), "poll_s": (float, "a number of seconds"),
}
REQUIRED = ("name", "order", "description", "family", "adapter", "profiles")
CRASH_KEYS: dict[str, tuple[type, str]] = {
    "timeout_options": (list, "a list of strings"), "options": (dict, "a table"),
    "loss_on_worker_kill": (str, "a string"), "rerun_on_worker_kill": (str, "a string"),
    "loss_on_node_kill": (str, "a string"), "rerun_on_node_kill": (str, "a string"),
    "redelivery_extra_s": (float, "a number of seconds"), "node_is_job_process": (str, "a string"),
    "timeout_profiles": (list, "a list of profile names"),
}


def shown(path: Path) -> str:
    """A path as people read it: relative to the project when inside it."""
    return str(path.relative_to(ROOT.parent)) if path.is_relative_to(ROOT.parent) else str(path)


def _file(info: BackendInfo) -> str:
    return shown(info.source) if info.source else f"backend {info.name!r}"


def _checked(table: dict[str, Any], keys: dict[str, tuple[type, str]], where: str
             ) -> dict[str, Any]:
    """`table`, or BackendFileError for an unknown key or a value of the wrong type."""
    for key, value in table.items():
        if key not in keys:
            raise BackendFileError(f"{where}: unknown key {key!r} (known: {', '.join(keys)})")
        kind, what = keys[key]
        ok = (isinstance(value, kind) or (kind is float and isinstance(value, int))) \
            and not (kind in (int, float) and isinstance(value, bool))
        if ok and kind is list:
            ok = all(isinstance(item, str) for item in value)
        if not ok or (key == "colour" and not COLOUR.fullmatch(value)):
            raise BackendFileError(f"{where}: {key} must be {what}, not {value!r}")
    return table


def _entry(shared: dict[str, Any], own: dict[str, Any], path: Path, package: str
           ) -> BackendInfo:
    """One backend: the file's shared keys with the entry's own on top."""
    where = f"{shown(path)}: [[backend]] {own.get('name', '#?')}"
    merged = {**shared, **_checked(own, KEYS, where)}
    for table in ("profiles", "crash"):
        merged[table] = {**shared.get(table, {}), **own.get(table, {})}
    missing = [key for key in REQUIRED if key not in merged]
    if missing:
        raise BackendFileError(f"{where}: missing {', '.join(missing)}")
    if sorted(merged["profiles"]) != sorted(PROFILES):
        raise BackendFileError(f"{where}: [profiles] must describe exactly "
                               f"{', '.join(PROFILES)}")
    if not all(isinstance(text, str) for text in merged["profiles"].values()):
        raise BackendFileError(f"{where}: [profiles] values must be strings")
    crash = _checked(merged["crash"], CRASH_KEYS, f"{where}: [crash]")
    unknown = set(crash.get("timeout_profiles", ())) - set(PROFILES)
    if unknown:
        raise BackendFileError(f"{where}: [crash] timeout_profiles names no profile "
                               f"{', '.join(sorted(map(str, unknown)))} "
                               f"(profiles: {', '.join(PROFILES)})")
    module, _, cls = merged["adapter"].partition(":")
    if not module or not cls:
        raise BackendFileError(f"{where}: adapter must be \"module:Class\", "
                               f"not {merged['adapter']!r}")
    return BackendInfo(
        name=merged["name"], family=merged["family"], broker=merged.get("broker"),
        adapter=f"{package}.{path.parent.name}.{module}:{cls}",
        description=merged["description"], ceiling=merged.get("ceiling"),
        order=merged["order"], key_packages=tuple(merged.get("key_packages", ())),
        profiles=dict(merged["profiles"]), colour=merged.get("colour"),
        layout_sweep=merged.get("layout_sweep", False), poll_s=merged.get("poll_s"),
        crash=CrashInfo(timeout_options=tuple(crash.get("timeout_options", ())),
                        options=dict(crash.get("options", {})),
                        loss_on_worker_kill=crash.get("loss_on_worker_kill"),
                        rerun_on_worker_kill=crash.get("rerun_on_worker_kill"),
                        loss_on_node_kill=crash.get("loss_on_node_kill"),
                        rerun_on_node_kill=crash.get("rerun_on_node_kill"),
                        redelivery_extra_s=float(crash.get("redelivery_extra_s", 0.0)),
                        node_is_job_process=crash.get("node_is_job_process"),
                        timeout_profiles=(tuple(crash["timeout_profiles"])
                                          if "timeout_profiles" in crash else None)),
        source=path,
    )


def read_backend_file(path: Path, package: str = __name__) -> list[BackendInfo]:
    """The backends one backend.toml declares (`package` is the folder's parent package)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BackendFileError(f"{shown(path)}: cannot read it: {exc}") from None
    entries = data.pop("backend", None)
    if not isinstance(entries, list) or not entries or not all(
            isinstance(own, dict) for own in entries):
        raise BackendFileError(f"{shown(path)}: declares no [[backend]]")
    shared = _checked(data, KEYS, shown(path))
    return [_entry(shared, own, path, package) for own in entries]


def _check_registry(infos: list[BackendInfo]) -> None:
    """Names, orders and colours unique; every ceiling a backend on the same broker."""
    seen: dict[tuple[str, object], BackendInfo] = {}
    for info in infos:
        for what, value in (("name", info.name), ("order", info.order),
                            ("colour", info.colour)):
            first = seen.setdefault((what, value), info)
            if value is not None and first is not info:
                raise BackendFileError(f"{_file(info)}: backend {info.name!r} has the {what} "
                                       f"{value!r} of {first.name!r} ({_file(first)})")
    names = {info.name: info for info in infos}
    for info in infos:
        ceiling = names.get(info.ceiling or "")
        if info.ceiling and (ceiling is None or ceiling.broker != info.broker):
            raise BackendFileError(f"{_file(info)}: the ceiling of {info.name!r} must be a "
                                   f"backend on broker {info.broker!r}, not {info.ceiling!r}")


def scan(root: Path = ROOT, package: str = __name__) -> dict[str, BackendInfo]:
    """Every backend declared in root/*/backend.toml, in registry order."""
    infos = [info for path in sorted(root.glob(f"*/{FILE_NAME}"))
             for info in read_backend_file(path, package)]
    _check_registry(infos)
    return {info.name: info for info in sorted(infos, key=lambda info: info.order)}


# a release (a version starts with a digit: 5.6.3, 2.0rc1) or "local" (a --with checkout)
VARIANT_LABEL = re.compile(r"local|[0-9][A-Za-z0-9._+-]*")


class Registry(dict[str, BackendInfo]):
    """The scanned backends. "<backend>@<label>" also names a backend: the same one in
    its own environment, .venvs/<family>@<label>, holding another version of its library
    or a local checkout (harness/envs.py builds it). Listing shows only scanned ones."""

    def __missing__(self, name: str) -> BackendInfo:
        base, _, label = name.partition("@") if isinstance(name, str) else (name, "", "")
        if base == name or base not in self or not VARIANT_LABEL.fullmatch(label):
            raise KeyError(name)
        info = self[base]
        return replace(info, name=name, family=f"{info.family}@{label}", colour=None)

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None

    def get(self, name: object, default: Any = None) -> Any:
        try:
            return self[name]  # type: ignore[index]
        except KeyError:
            return default


try:
    BACKENDS: Registry = Registry(scan())
except BackendFileError as exc:  # one line for whoever imports the registry (CLI, driver)
    raise SystemExit(f"queuebench: {exc}") from None


# The raw-broker ceilings: the backends others name as their broker's ceiling
# (backend.toml `ceiling`). Yardsticks, not choices: never ranked, gated only on demand.
CEILINGS = frozenset(info.ceiling for info in BACKENDS.values() if info.ceiling)


def backend_names() -> list[str]:
    return list(BACKENDS)


def load_adapter(name: str) -> type[Adapter]:
    """Import the adapter class of backend `name` (in its own environment)."""
    return BACKENDS[name].load()

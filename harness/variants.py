"""The version matrix: a backend named "<backend>@<label>" runs beside the pinned one,
in its own environment .venvs/<family>@<label> (adapters.Registry names it, harness.envs
builds it): `--backend celery-redis@5.6.3` (another release of the library) or
`--with celery=/path/to/checkout` (label "local": every chosen backend that uses the
package gets a twin built from the checkout)."""

from __future__ import annotations

from collections.abc import Sequence

from adapters import BACKENDS
from harness import envs


def is_variant(name: str) -> bool:
    """A name "<backend>@<label>" of a backend that has its own environment."""
    info = BACKENDS.get(name)
    return info is not None and "@" in name and not info.family.startswith(f"{envs.CORE}@")


def uses(backend: str, package: str) -> bool:
    info = BACKENDS[backend]
    if info.family == envs.CORE:
        return False
    names = {envs.requirement_name(r) for r in envs.pinned(info.family)}
    return package in names or package in info.key_packages


def expand(backends: Sequence[str], packages: Sequence[str]) -> list[str]:
    """The chosen backends, each followed by its local twin when it uses a checkout."""
    out = []
    for backend in backends:
        out.append(backend)
        if "@" not in backend and any(uses(backend, p) for p in packages):
            out.append(f"{backend}@{envs.LOCAL}")
    return list(dict.fromkeys(out))


def prepare(backends: Sequence[str]) -> None:
    """Build the variants' environments (a local checkout is reinstalled every run)."""
    for family in dict.fromkeys(BACKENDS[b].family for b in backends if "@" in b):
        local = family.endswith(f"@{envs.LOCAL}")
        if envs.status(family) is None and not local:
            continue
        print(f".venvs/{family}: building ({', '.join(envs.requirements(family))})",
              flush=True)
        envs.build(family, force=local)

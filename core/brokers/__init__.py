"""The broker kinds: one BrokerKind subclass per module of this package, found by scanning.

Adding a broker kind is adding one module here; the CLI flags, `doctor`,
`setup`, the broker pool, memory readings and crash-recovery's persistence
settings all read this registry. It lives in the stdlib-only core because
the driver (backend environments) and the scenarios use it too.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from urllib.parse import urlsplit

from core.brokers.base import BrokerKind


def _scan() -> dict[str, type[BrokerKind]]:
    found: dict[str, type[BrokerKind]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, BrokerKind) and obj is not BrokerKind
                    and obj.__module__ == module.__name__):
                if inspect.isabstract(obj):  # a kind written without every method
                    missing = ", ".join(sorted(obj.__abstractmethods__))
                    raise RuntimeError(f"broker kind {obj.__name__} ({module.__name__}) does "
                                       f"not define {missing}")
                if obj.name in found:
                    raise RuntimeError(f"two broker kinds are named {obj.name!r}")
                found[obj.name] = obj
    return found


KINDS: dict[str, type[BrokerKind]] = _scan()


def broker_kind(name: str) -> type[BrokerKind]:
    """The kind a backend declares by name ("redis", "amqp")."""
    return KINDS[name]


def kind_for_url(url: str) -> type[BrokerKind] | None:
    """The kind whose URL scheme `url` has, if any."""
    scheme = urlsplit(url).scheme
    return next((kind for kind in KINDS.values() if scheme in kind.schemes), None)

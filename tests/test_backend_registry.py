"""The backend registry is found by scanning adapters/*/backend.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters import BACKENDS, ROOT, BackendFileError, BackendInfo, scan
from adapters.base import PROFILES, Adapter
from reports.style import colours

NINE = ["asyncio", "redis-raw", "amqp-raw", "celery-redis", "celery-rabbitmq",
        "dramatiq-redis", "dramatiq-rabbitmq", "arq", "rq"]
NEW_BACKEND = """\
family = "newlib"
adapter = "adapter:NewAdapter"
key_packages = ["newlib"]
[profiles]
default = "what a new user gets"
reliable = "what its docs recommend against loss"
tuned = "what its docs recommend for throughput"
[crash]
timeout_options = ["lease_s"]
loss_on_worker_kill = "newlib pops a job when it starts it"
[[backend]]
name = "newlib"
order = 100
description = "newlib on Redis"
broker = "redis"
ceiling = "redis-raw"
"""
NEW_ADAPTER = """\
from adapters.base import PROFILES, Adapter


class NewAdapter(Adapter):
    bulk_api = True
"""


def copy_of_adapters(tmp_path: Path) -> Path:
    """The backend folders' backend.toml files under a package of their own."""
    root = tmp_path / "qb_plugins"
    for path in ROOT.glob("*/backend.toml"):
        (root / path.parent.name).mkdir(parents=True)
        shutil.copy(path, root / path.parent.name / "backend.toml")
    (root / "__init__.py").write_text("")
    return root


def test_the_scan_finds_the_nine_backends_in_registry_order() -> None:
    assert [name for name in BACKENDS if name in NINE] == NINE  # later ones come on top
    for info in BACKENDS.values():
        assert info.source is not None and info.source.parent.parent == ROOT
        assert info.adapter.startswith(f"adapters.{info.source.parent.name}.")
        assert set(info.profiles) == set(PROFILES)
    assert BACKENDS["celery-redis"].crash.timeout_options == ("visibility_timeout_s",)
    assert BACKENDS["dramatiq-redis"].crash.options == {"maintenance_chance": 1_000_000}
    assert BACKENDS["celery-rabbitmq"].crash.timeout_options == ()
    assert BACKENDS["asyncio"].broker is None


def test_a_new_folder_is_found_without_editing_any_other_file(tmp_path, monkeypatch) -> None:
    root = copy_of_adapters(tmp_path)
    (root / "newlib").mkdir()
    (root / "newlib" / "backend.toml").write_text(NEW_BACKEND)
    (root / "newlib" / "__init__.py").write_text("")
    (root / "newlib" / "adapter.py").write_text(NEW_ADAPTER)
    found = scan(root, "qb_plugins")
    assert [name for name in found if name != "newlib"] == list(BACKENDS)
    assert [info.order for info in found.values()] == sorted(i.order for i in found.values())
    new = found["newlib"]
    assert (new.family, new.broker, new.ceiling, new.key_packages) == (
        "newlib", "redis", "redis-raw", ("newlib",))
    assert new.crash.timeout_options == ("lease_s",)
    monkeypatch.syspath_prepend(str(tmp_path))
    adapter = new.load()
    assert issubclass(adapter, Adapter) and adapter.bulk_api


@pytest.mark.parametrize(("text", "message"), [
    ("family = \n", "cannot read it"),
    (NEW_BACKEND.replace("[[backend]]", "[backend]"), "declares no [[backend]]"),
    (NEW_BACKEND.replace("order = 100", "order = \"last\""), "order must be an integer"),
    (NEW_BACKEND.replace("order = 100", "ordre = 100"), "unknown key 'ordre'"),
    (NEW_BACKEND.replace('description = "newlib on Redis"\n', ""), "missing description"),
    (NEW_BACKEND.replace('reliable = "what its docs recommend against loss"\n', ""),
     "[profiles] must describe exactly default, reliable, tuned"),
    (NEW_BACKEND.replace("timeout_options", "timeouts"), "[crash]: unknown key 'timeouts'"),
    (NEW_BACKEND.replace('timeout_options = ["lease_s"]',
                         'timeout_options = ["lease_s"]\n'
                         'timeout_profiles = ["relaible"]'),
     "timeout_profiles names no profile relaible"),
    (NEW_BACKEND.replace("order = 100", "order = 10"), "has the order 10 of 'asyncio'"),
    (NEW_BACKEND.replace('"redis-raw"', '"amqp-raw"'), "ceiling of 'newlib' must be"),
    (NEW_BACKEND + 'colour = "red"\n', 'colour must be a colour "#rrggbb"'),
])
def test_a_malformed_file_is_one_clear_line_naming_it(tmp_path, text, message) -> None:
    root = copy_of_adapters(tmp_path)
    (root / "newlib").mkdir()
    (root / "newlib" / "backend.toml").write_text(text)
    with pytest.raises(BackendFileError) as caught:
        scan(root, "qb_plugins")
    error = str(caught.value)
    assert "\n" not in error
    assert error.startswith(str(root / "newlib" / "backend.toml")), error
    assert message in error, error


def test_colours_are_distinct_for_twenty_backends() -> None:
    extra = {f"new-{i}": BackendInfo(f"new-{i}", "x", "redis", "m:C", "d", order=100 + i)
             for i in range(20 - len(BACKENDS))}
    chosen = colours({**BACKENDS, **extra})
    assert len(chosen) == 20 and len(set(chosen.values())) == 20
    assert all(chosen[name] == info.colour for name, info in BACKENDS.items())
    undeclared = {f"new-{i}": BackendInfo(f"new-{i}", "x", None, "m:C", "d") for i in range(20)}
    assert len(set(colours(undeclared).values())) == 20

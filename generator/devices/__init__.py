"""Device families: every module in this package declares one `Device` subclass (but `motion`,
the interpolation and rotation helpers they share).

Modules are found by name, so adding a family is adding a file; `DEVICES` maps device names to
classes in a stable (alphabetical) order.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil

from ipadgen.program import Device


def _discover() -> dict[str, type[Device]]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, Device) and obj is not Device \
                    and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return dict(sorted(found.items()))


DEVICES: dict[str, type[Device]] = _discover()


def get_device(name: str) -> type[Device]:
    try:
        return DEVICES[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; allowed: {', '.join(DEVICES)}") from None

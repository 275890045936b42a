"""Device families. Each module declares one `Device` subclass; `DEVICES` maps names to them."""
from __future__ import annotations

from ..program import Device
from .lifter import Lifter

DEVICES: dict[str, type[Device]] = {cls.name: cls for cls in (Lifter,)}


def get_device(name: str) -> type[Device]:
    try:
        return DEVICES[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; allowed: {', '.join(sorted(DEVICES))}") from None

"""Motion helpers shared by the device families (no Device here): interpolation and rotation.

Plain float arithmetic, in a fixed order of operations, so that every family computes
exactly the poses it computed with its own copy before.
"""
from __future__ import annotations

import math

from ipadgen.program import PartState

Vec = tuple[float, float, float]

# The two axes a rotation about axis 0, 1, 2 (x, y, z) turns, and the sign of the sine term in
# the first one's new value (the right-hand rule: about y, x turns towards -z).
_PLANE = {0: (1, 2, -1.0), 1: (0, 2, 1.0), 2: (0, 1, -1.0)}


def lerp(a, b, t: float) -> tuple[float, ...]:
    """a + (b - a) t, component by component, as floats; exactly b from t = 1 on."""
    if t >= 1.0:
        return tuple(float(y) for y in b)
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))


def ramp(t: float, lo: float, hi: float) -> float:
    """Progress of `t` through [lo, hi], clipped to [0, 1]."""
    return min(max((t - lo) / (hi - lo), 0.0), 1.0)


def rotate(v: Vec, axis: int, angle: float, pivot: Vec | None = None) -> Vec:
    """The point `v` turned by `angle` (radians, right-handed) about the world axis `axis`
    (0, 1, 2: x, y, z) through `pivot` (the origin when None)."""
    i, j, sign = _PLANE[axis]
    c, s = math.cos(angle), sign * math.sin(angle)
    out = list(v)
    if pivot is None:
        out[i] = c * v[i] + s * v[j]
        out[j] = -s * v[i] + c * v[j]
    else:
        di, dj = v[i] - pivot[i], v[j] - pivot[j]
        out[i] = pivot[i] + c * di + s * dj
        out[j] = pivot[j] - s * di + c * dj
        k = 3 - i - j
        out[k] = pivot[k] + (v[k] - pivot[k])
    return tuple(out)


def turned(state: PartState, axis: int, angle: float, pivot: Vec | None = None) -> PartState:
    """The part turned as a rigid body by `angle` about the world axis `axis` through `pivot`:
    its location rotated, `angle` added to its rotation about that axis."""
    rotation = list(state.rotation)
    rotation[axis] = rotation[axis] + angle
    return state.moved(location=rotate(state.location, axis, angle, pivot),
                       rotation=tuple(rotation))

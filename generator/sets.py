"""Scene sets: scene files (YAML) checked field by field, the S01-S12 set, and new scenes sampled
for pretraining.

A scene file holds one `SceneSpec` as YAML (`ipadgen schema` prints its JSON schema). Loading
reports every wrong field on its own line: the file, the field's path, what is wrong and what is
allowed. Beyond the schema, the device must be a known family, the parameters its own and inside
their ranges, and the anomaly kinds its own.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from ipadgen.devices import DEVICES
from ipadgen.spec import CameraSpec, NuisanceSpec, RenderSpec, SceneSpec

# S01..S12: one scene per family, in this order.
BENCHMARK_FAMILIES = ("lifter", "conveyor", "cutter", "driller", "gripper", "forklift", "sorter",
                      "crane", "press", "rotary_table", "palletizer", "filler")


class SceneFileError(ValueError):
    """One or more wrong fields in scene files; `lines` holds one message per problem."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


# --------------------------------------------------------------------------- checking


def _field_model(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model a location points into (for listing its allowed fields)."""
    model: Any = SceneSpec
    for key in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or key not in fields:
            return None
        annotation = fields[key].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            else None
    return model


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_lines(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "(scene)"
        kind, msg = e["type"], e["msg"]
        if kind == "extra_forbidden":
            parent = _field_model(loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "see `ipadgen schema`"
            msg = f"unknown field; allowed fields here: {allowed}"
        elif kind == "missing" and loc and isinstance(loc[-1], int):
            path = ".".join(str(p) for p in loc[:-1])
            msg = f"item {loc[-1]} is missing (give a [low, high] pair)"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "string_pattern_mismatch":
            msg = (f"{msg} (letters, digits, '_', '.', '-'; no spaces or slashes)"
                   f"; got {_short(e['input'])}")
        elif loc and kind != "value_error":
            msg = f"{msg}; got {_short(e['input'])}"
        else:
            msg = msg.removeprefix("Value error, ")
        out.append((path, msg))
    return out


def _device_lines(raw: dict) -> list[tuple[str, str]]:
    """Device, parameters and anomaly kinds against the device family (checked on the raw
    mapping, so they are reported together with the schema's errors)."""
    device = raw.get("device")
    if not isinstance(device, str):
        return []  # the schema reports it
    if device not in DEVICES:
        return [("device", f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")]
    cls = DEVICES[device]
    out = []
    params = raw.get("params")
    if isinstance(params, dict):
        for name, value in params.items():
            if name not in cls.params:
                out.append((f"params.{name}", f"unknown parameter of {device}; allowed: "
                                              f"{', '.join(cls.params)}"))
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue  # the schema reports it
            r = cls.params[name]
            if not (math.isfinite(value) and r.low <= value <= r.high):
                unit = f" {r.unit}" if r.unit else ""
                out.append((f"params.{name}", f"{value!r} is outside the range of {device}: "
                                              f"{r.low:g} .. {r.high:g}{unit}"))
    anomalies = raw.get("anomalies")
    if isinstance(anomalies, (list, tuple)):
        for i, kind in enumerate(anomalies):
            if isinstance(kind, str) and kind not in cls.anomalies:
                out.append((f"anomalies.{i}", f"unknown anomaly kind {kind!r} of {device}; "
                                              f"allowed: {', '.join(cls.anomalies)}"))
    return out


def validate_scene(raw: Any, source: str = "scene") -> SceneSpec:
    """A SceneSpec from a parsed mapping, or SceneFileError with one line per wrong field."""
    if not isinstance(raw, dict):
        raise SceneFileError([f"{source}: a scene file holds one mapping of SceneSpec fields "
                              f"(see `ipadgen schema`); got {type(raw).__name__}"])
    problems: list[tuple[str, str]] = []
    spec = None
    try:
        spec = SceneSpec.model_validate(raw)
    except ValidationError as e:
        problems += _pydantic_lines(e)
    seen = {p for p, _ in problems}
    problems += [(p, m) for p, m in _device_lines(raw) if p not in seen]
    if problems:
        raise SceneFileError([f"{source}: {path}: {msg}" for path, msg in problems])
    return spec


def _refuse_aliases(text: str, path: Path) -> None:
    """A scene file has no use for YAML anchors and aliases, and a few hundred bytes of nested
    aliases expand to gigabytes (a 'billion laughs'): refused before anything is expanded."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise SceneFileError([f"{path}: line {mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed "
                                  f"in a scene file; write the values out"])


def load_scene_file(path: Path) -> SceneSpec:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SceneFileError([f"{path}: cannot read: {e.strerror or e}"]) from None
    try:
        _refuse_aliases(text, path)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SceneFileError([f"{path}: not valid YAML: {where}{problem}"]) from None
    return validate_scene(raw, str(path))


def load_scene_files(paths: list[Path]) -> list[SceneSpec]:
    """Every file checked; all problems of all files reported together. A folder stands for
    the *.yaml / *.yml files in it."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise SceneFileError([f"{p}: folder holds no *.yaml scene files"])
            files += found
        else:
            files.append(p)
    specs, lines = [], []
    for f in files:
        try:
            specs.append(load_scene_file(f))
        except SceneFileError as e:
            lines += e.lines
    if lines:
        raise SceneFileError(lines)
    names: dict[str, Path] = {}
    for f, spec in zip(files, specs):
        if spec.name in names:
            lines.append(f"{f}: name: scene name {spec.name!r} is also used by {names[spec.name]}; "
                         f"names must be unique within a set")
        names.setdefault(spec.name, f)
    if lines:
        raise SceneFileError(lines)
    return specs


# --------------------------------------------------------------------------- writing


def spec_yaml(spec: SceneSpec, header: str = "") -> str:
    data = spec.model_dump(mode="json")
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
    lines = [f"# {line}" for line in header.splitlines()]
    return "\n".join(lines + [body]) if lines else body


def write_scene_file(spec: SceneSpec, path: Path, header: str = "") -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(spec_yaml(spec, header))
    os.replace(tmp, path)


# --------------------------------------------------------------------------- S01..S12


def benchmark_spec(index: int) -> SceneSpec:
    """S<index>: the family's scene of the reference set, every device parameter written out.

    Sized like an IPAD scene (about 40-50 thousand 256x256 frames at 30 fps): 10 training and
    8 testing videos of 6 cycles, every anomaly kind of the family in the test videos."""
    from ipadgen.scene import scene_device

    family = BENCHMARK_FAMILIES[index - 1]
    cls = DEVICES[family]
    base = SceneSpec(name=f"S{index:02d}", device=family, anomalies=tuple(cls.anomalies),
                     seed=1000 + index, train_videos=10, test_videos=8, cycles=6,
                     max_anomalies_per_video=2, fps=30.0, render=RenderSpec(resolution=256))
    params = {k: _round_in(v, cls.params[k]) for k, v in scene_device(base).values.items()}
    return base.model_copy(update={"params": params})


def _round_in(value: float, r) -> float:
    return float(min(max(round(value, 4), r.low), r.high))


def write_benchmark(out: Path, families_present_only: bool = True) -> list[Path]:
    """Write scenes/S01.yaml ... for every family that exists (in BENCHMARK_FAMILIES order)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, family in enumerate(BENCHMARK_FAMILIES, start=1):
        if family not in DEVICES:
            if families_present_only:
                continue
            raise ValueError(f"device family {family!r} does not exist yet")
        path = out / f"S{i:02d}.yaml"
        write_scene_file(benchmark_spec(i), path,
                         f"S{i:02d}: {family} ({DEVICES[family].description}).\n"
                         f"Render: ipadgen render-set scenes/S{i:02d}.yaml --out DIR "
                         f"(fields: ipadgen schema)")
        written.append(path)
    return written


# --------------------------------------------------------------------------- sampling


def _range_in(rng: np.random.Generator, lo: float, hi: float, max_half: float) -> list[float]:
    """A random sub-interval of [lo, hi]: a centre and a half width up to max_half."""
    c = rng.uniform(lo, hi)
    w = rng.uniform(0, max_half)
    return [round(max(lo, c - w), 2), round(min(hi, c + w), 2)]


def sample_scene(seed: int, i: int, devices: list[str], *, train_videos: int, test_videos: int,
                 cycles: int, fps: float, resolution: int, engine: str, style: str,
                 prefix: str) -> SceneSpec:
    """Scene i of the sample with this seed, from its own random stream (so the first N scenes
    of a larger sample are the same)."""
    rng = np.random.default_rng([seed, i])
    family = devices[int(rng.integers(len(devices)))]
    cls = DEVICES[family]
    params = {k: _round_in(r.sample(rng), r) for k, r in cls.params.items()}
    kinds = list(cls.anomalies)
    k = int(rng.integers(min(2, len(kinds)), len(kinds) + 1))
    chosen = set(rng.choice(len(kinds), size=k, replace=False).tolist())
    anomalies = tuple(kind for j, kind in enumerate(kinds) if j in chosen)
    default = NuisanceSpec()
    levels = {}
    for name, field in NuisanceSpec.model_fields.items():
        value = getattr(default, name) * float(rng.uniform(0.0, 2.0))
        ceiling = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
        levels[name] = round(min(value, ceiling) if ceiling is not None else value, 4)
    camera = CameraSpec(azimuth=tuple(_range_in(rng, -30.0, 30.0, 8.0)),
                        elevation=tuple(_range_in(rng, 15.0, 32.0, 4.0)),
                        focal_length=round(float(rng.uniform(28.0, 50.0)), 1))
    return SceneSpec(
        name=f"{prefix}{seed}-{i + 1:04d}-{family}", device=family, params=params,
        anomalies=anomalies, seed=int(rng.integers(0, 2**31 - 1)),
        train_videos=train_videos, test_videos=test_videos, cycles=cycles,
        max_anomalies_per_video=int(rng.integers(1, 3)), fps=fps,
        render=(RenderSpec.real(resolution=resolution, engine=engine) if style == "real"
                else RenderSpec(resolution=resolution, engine=engine)),
        nuisance=NuisanceSpec(**levels), camera=camera)


def sample_scenes(n: int, seed: int, devices: list[str] | None = None, *, train_videos: int = 4,
                  test_videos: int = 4, cycles: int = 3, fps: float = 10.0,
                  resolution: int = 256, engine: str = "workbench", style: str = "synthetic",
                  prefix: str = "P") -> list[SceneSpec]:
    """N different scene specs: random families, parameters inside their ranges, cameras, light
    and nuisance levels, anomaly mixes. The same seed (and the same device families) gives the
    same specs."""
    devices = sorted(devices if devices is not None else DEVICES)
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or not devices:
        raise ValueError(f"unknown device(s) {unknown}; allowed: {', '.join(DEVICES)}")
    specs = [sample_scene(seed, i, devices, train_videos=train_videos, test_videos=test_videos,
                          cycles=cycles, fps=fps, resolution=resolution, engine=engine,
                          style=style, prefix=prefix) for i in range(n)]
    seeds = [s.seed for s in specs]
    if len(set(seeds)) != len(seeds):  # astronomically rare; never hand out twins
        raise AssertionError("two sampled scenes share a seed")
    return specs


if __name__ == "__main__":  # python -m ipadgen.sets [DIR]: (re)write DIR/S01.yaml ... (default scenes/)
    import sys

    for written in write_benchmark(Path(sys.argv[1] if len(sys.argv) > 1 else "scenes")):
        print(f"wrote {written}")

"""`ipadgen`: render labelled industrial videos in the IPAD layout.

Verbs: render (one scene), devices (what can be rendered), preview (contact sheet of a scene),
schema (JSON schema of a scene file), sample-scenes (new scene files for pretraining), render-set
(many scene files, parallel, resumable, sharded), verify (audit a rendered scene).

typer parses, shows the defaults and checks the ranges; the ranges of the scene options are
those SceneSpec and RenderSpec declare. Bad input (a usage or data error) is one line per
problem on stderr and exit 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import re
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional, get_args

import typer
from pydantic import BaseModel, ValidationError

from ipadgen.commandline import CommandLine, FrameworkError
from ipadgen.contract import OUT_OF_ROOM
from ipadgen.devices import DEVICES, get_device
from ipadgen.spec import NuisanceSpec, RenderSpec, SceneSpec, resolve_anomalies

FLAG_OF = {"train_videos": "--train-videos", "test_videos": "--test-videos",
           "cycles": "--cycles", "resolution": "--resolution", "engine": "--engine",
           "seed": "--seed", "name": "--scene-name", "fps": "--fps", "samples": "--samples",
           "style": "--style"}
UNIT = {"resolution": " pixels"}  # said after a bound in a range error


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    if not e["loc"]:  # a check across fields: its own sentence, not the whole spec as the input
        return str(e.get("ctx", {}).get("error", e["msg"]))
    field = next((FLAG_OF[str(p)] for p in reversed(e["loc"]) if str(p) in FLAG_OF),
                 ".".join(map(str, e["loc"])) or "spec")
    message = e["msg"][:1].lower() + e["msg"][1:]  # only the first letter: a pattern keeps its capitals
    return f"{field}: {message} (got {e.get('input')!r})"


def _range(model: type[BaseModel], field: str) -> dict[str, float]:
    """typer's min/max from the ge/le of a spec field: the CLI checks the range the spec declares."""
    bounds = {}
    for m in model.model_fields[field].metadata:
        if getattr(m, "ge", None) is not None:
            bounds["min"] = m.ge
        if getattr(m, "le", None) is not None:
            bounds["max"] = m.le
    return bounds


# ------------------------------------------------------------------ options shared between verbs

Seed = Annotated[int, typer.Option(help="seed of everything drawn (parameters, camera, nuisance, "
                                        "anomaly timing)", **_range(SceneSpec, "seed"))]
TrainVideos = Annotated[int, typer.Option(help="normal videos for training",
                                          **_range(SceneSpec, "train_videos"))]
TestVideos = Annotated[int, typer.Option(help="test videos (normal and anomalous frames)",
                                         **_range(SceneSpec, "test_videos"))]
Cycles = Annotated[int, typer.Option(help="work cycles per video", **_range(SceneSpec, "cycles"))]
Fps = Annotated[float, typer.Option(help="frames per second", **_range(SceneSpec, "fps"))]
Resolution = Annotated[int, typer.Option(help="frame size in pixels (square)",
                                         **_range(RenderSpec, "resolution"))]
Engine = Annotated[Optional[str], typer.Option(help="workbench (fast) or cycles",
                                               show_default="workbench; cycles for --style real")]
# the looks RenderSpec knows, as an Enum: typer 0.12 (the bottom of the range in pyproject) takes no Literal
StyleName = Enum("StyleName", [(v, v) for v in get_args(RenderSpec.model_fields["style"].annotation)],
                 type=str)
Style = Annotated[StyleName, typer.Option(
    help="synthetic: clean IPAD-like look; real: a stand-in for camera footage (Cycles, worn "
         "colours, sensor noise, motion blur, lens distortion, JPEG 80, stronger white-balance drift)")]
Devices = Annotated[Optional[str], typer.Option(help="comma list of device families",
                                                show_default="every device")]
Quiet = Annotated[bool, typer.Option("--quiet", help="no progress bar")]
Scene = Annotated[Path, typer.Argument(metavar="SCENE", help="a rendered scene folder, <out>/<scene>",
                                       show_default=False)]


def _engine(engine: str | None, style: str) -> str:
    return engine or ("cycles" if style == "real" else "workbench")  # real: Cycles unless told otherwise


def _families(devices: str | None) -> list[str] | None:
    if not devices:
        return None
    names = [d.strip() for d in devices.split(",")]
    for name in names:
        try:
            get_device(name)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return names


def _writable_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created when missing)")


def _rendered_scene(scene: Path) -> None:
    if not (scene / "scene.json").is_file():
        raise UsageError(f"{scene} is not a rendered scene (no scene.json); give <out>/<scene>")


# ------------------------------------------------------------------ the app

def _bad_input(error: Exception) -> list[str] | None:
    """The lines an error is reported as (a UsageError: one per problem), or None for a bug."""
    if isinstance(error, UsageError):
        return str(error).splitlines() or [""]
    if isinstance(error, OSError) and error.errno in OUT_OF_ROOM:
        return [f"{error.filename or 'an output'} could not be written ({error.strerror}); "
                f"the videos already finished are kept: make room and rerun the same command to resume"]
    return None


def _framework_error(e: FrameworkError) -> str:
    """One line for what typer refused: a range as the project words it, else typer's message."""
    param, cause = getattr(e, "param", None), e.__cause__
    if param is not None and isinstance(cause, ValidationError):
        err = cause.errors()[0]
        flag = param.opts[0] if getattr(param, "opts", None) else param.human_readable_name
        unit, bound = UNIT.get(param.name, ""), err.get("ctx", {})
        if err["type"] == "greater_than_equal":
            return f"{flag} must be at least {bound['ge']:g}{unit} (got {err['input']})"
        if err["type"] == "less_than_equal":
            return f"{flag} must be at most {bound['le']:g}{unit} (got {err['input']})"
        if err["type"] == "value_error":  # a choice
            return f"{flag}: {bound['error']}"
        return f"{flag}: {err['msg'][:1].lower()}{err['msg'][1:]} (got {err['input']!r})"
    return " ".join(e.format_message().split())


CLI = CommandLine("ipadgen", __doc__.splitlines()[0], _bad_input, _framework_error)
app, verb = CLI.app, CLI.verb


# ------------------------------------------------------------------ render

def _parse_params(items: list[str]) -> dict[str, float]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            params[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"--param expects NAME=NUMBER (got {item!r})")
    return params


@verb("render", "render one scene (training + testing videos with labels)",
      "Render one scene of a device into <out>/<scene> in the IPAD layout, with period labels, "
      "masks and meta.")
def cmd_render(
    device: Annotated[str, typer.Option(help="device family (see `ipadgen devices`)")] = "lifter",
    anomalies: Annotated[str, typer.Option(
        help="anomalies of the test videos: a category (appearance, position, motion, logic), "
             "kind names, a comma list, or all")] = "all",
    out: Annotated[Path, typer.Option(help="output root")] = Path("ipad_out"),
    scene_name: Annotated[Optional[str], typer.Option(
        help="scene folder name", show_default="DEVICE-ANOMALIES-SEED")] = None,
    seed: Seed = 0, train_videos: TrainVideos = 4, test_videos: TestVideos = 4, cycles: Cycles = 3,
    fps: Fps = 10.0, resolution: Resolution = 256, engine: Engine = None,
    samples: Annotated[int, typer.Option(help="Cycles samples per pixel",
                                         **_range(RenderSpec, "samples"))] = 16,
    style: Style = StyleName.synthetic,
    param: Annotated[Optional[list[str]], typer.Option(
        metavar="NAME=VALUE", help="fix a device parameter (repeat for several)",
        show_default="drawn from the seed")] = None,
    no_nuisance: Annotated[bool, typer.Option(
        "--no-nuisance", help="no light drift, flicker, camera shake or cycle-time variation")] = False,
    quiet: Quiet = False,
) -> int:
    from ipadgen.params import sample_params
    try:
        cls = get_device(device)
        kinds = resolve_anomalies(cls, anomalies)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if scene_name is not None and not scene_name.strip():
        raise UsageError("--scene-name is empty; give a folder name, or leave the option out for DEVICE-ANOMALIES-SEED")
    name = scene_name or re.sub(r"[^A-Za-z0-9_.-]+", "+", f"{device}-{anomalies}-{seed}")
    params, real = _parse_params(param or []), style == StyleName.real
    try:
        render = (RenderSpec.real if real else RenderSpec)(
            resolution=resolution, engine=_engine(engine, style.value), samples=samples)
        spec = SceneSpec(name=name, device=device, params=params, anomalies=kinds, seed=seed,
                         train_videos=train_videos, test_videos=test_videos, cycles=cycles, fps=fps,
                         render=render, nuisance=NuisanceSpec.off() if no_nuisance else NuisanceSpec(
                             light_color=1500.0 if real else 600.0))
    except ValidationError as e:
        raise UsageError(_one_line(e)) from None
    try:  # given parameters against their ranges (scene_device draws the rest the same way)
        import numpy as np
        sample_params(cls.params, np.random.default_rng(0), params)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _writable_folder(out)
    if (out / spec.name).exists():
        raise UsageError(f"{out / spec.name} already exists; remove it or choose another --scene-name")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"--out {out} cannot be written ({e.strerror or e}); give a writable folder") from None
    from ipadgen.render.run import render_scene
    try:
        path = render_scene(spec, out, progress=not quiet)
    except FileExistsError as e:  # an unfinished render of another spec in the way (the message says how to clear it)
        raise UsageError(str(e)) from None
    print(f"wrote scene {spec.name} ({spec.train_videos} training, {spec.test_videos} testing "
          f"videos) to {path}")
    return 0


# ------------------------------------------------------------------ looking at devices and scenes

@verb("devices", "list devices, their parameter ranges and anomaly kinds")
def cmd_devices() -> int:
    for name, cls in sorted(DEVICES.items()):
        print(f"{name}: {cls.description}")
        print("  parameters:")
        for pname, r in cls.params.items():
            unit = f" {r.unit}" if r.unit else ""
            doc = f"  ({r.doc})" if r.doc else ""
            print(f"    {pname:18s} {r.low:g} .. {r.high:g}{unit}{doc}")
        print("  anomalies:")
        for kind in cls.anomalies.values():
            print(f"    {kind.category:10s} {kind.name:14s} {kind.description}")
    return 0


@verb("preview", "contact sheet PNG of a rendered scene, masks outlined")
def cmd_preview(
    scene: Scene,
    out: Annotated[Optional[Path], typer.Option(help="PNG path", show_default="<scene>/preview.png")] = None,
    frames: Annotated[int, typer.Option(help="frames per video", min=1)] = 6,
) -> int:
    from ipadgen.preview import contact_sheet
    _rendered_scene(scene)
    out = out or scene / "preview.png"
    contact_sheet(scene, out, frames_per_video=frames)
    print(f"wrote {out}")
    return 0


@verb("gallery", "per device, every anomaly kind beside its normal twin (PNGs)")
def cmd_gallery(
    out: Annotated[Path, typer.Option(help="folder for the PNGs and index.md")] = Path("docs/gallery"),
    devices: Devices = None,
    resolution: Resolution = 192,
) -> int:
    families = _families(devices)
    from ipadgen.gallery import write_gallery
    for path in write_gallery(out, families, resolution):
        print(f"wrote {path}")
    return 0


@verb("schema", "print the JSON schema of a scene file (SceneSpec)")
def cmd_schema() -> int:
    import json
    print(json.dumps(SceneSpec.model_json_schema(), indent=1))
    return 0


# ------------------------------------------------------------------ sets of scenes

@verb("sample-scenes", "write N new, different scene specs (YAML)",
      "Write N new scene specs for pretraining: random device families, parameters inside their "
      "ranges, cameras, light and nuisance levels, anomaly mixes. Deterministic per seed (for the "
      "same device families).")
def cmd_sample_scenes(
    n: Annotated[int, typer.Option("--n", help="how many scenes", min=1)],
    out: Annotated[Path, typer.Option(help="folder for the <name>.yaml files")],
    seed: Seed = 0, devices: Devices = None,
    train_videos: TrainVideos = 4, test_videos: TestVideos = 4, cycles: Cycles = 3,
    fps: Fps = 10.0, resolution: Resolution = 256, engine: Engine = None,
    style: Style = StyleName.synthetic,
) -> int:
    from ipadgen.sets import sample_scenes, spec_yaml, write_scene_file
    families = _families(devices)
    try:
        specs = sample_scenes(n, seed, families, train_videos=train_videos, test_videos=test_videos,
                              cycles=cycles, fps=fps, resolution=resolution,
                              engine=_engine(engine, style.value), style=style.value)
    except ValidationError as e:
        raise UsageError(_one_line(e)) from None
    _writable_folder(out)
    header = f"ipadgen sample-scenes --seed {seed}; fields: ipadgen schema"
    clash = [out / f"{s.name}.yaml" for s in specs if (out / f"{s.name}.yaml").exists()
             and (out / f"{s.name}.yaml").read_text() != spec_yaml(s, header)]
    if clash:
        raise UsageError(f"{clash[0]} exists with other content; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        write_scene_file(spec, out / f"{spec.name}.yaml", header)
    print(f"wrote {len(specs)} scene specs to {out} (devices: {', '.join(sorted({s.device for s in specs}))})")
    return 0


@verb("render-set", "render scene files: parallel, resumable, sharded",
      "Render every video of the given scene files into <out>/<scene>, one video per worker "
      "process. Finished videos are skipped, unfinished ones redone; a scene appears only when all "
      "its videos are done. --shard K/N renders a fixed 1/N share (see docs/scale.md).")
def cmd_render_set(
    specs: Annotated[list[Path], typer.Argument(metavar="SPEC", show_default=False,
                                                help="scene files (YAML), or folders of them")],
    out: Annotated[Path, typer.Option(help="output root")],
    workers: Annotated[int, typer.Option(help="videos rendered at once (processes)", min=1)] = 1,
    shard: Annotated[Optional[str], typer.Option(metavar="K/N", show_default="all of it",
                                                 help="render only share K of N (1-based)")] = None,
    quiet: Quiet = False,
) -> int:
    from ipadgen.render.run import parse_shard, render_set
    from ipadgen.sets import SceneFileError, load_scene_files
    try:
        share = parse_shard(shard) if shard else (1, 1)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        scenes = load_scene_files(specs)
    except SceneFileError as e:
        raise UsageError(str(e)) from None
    _writable_folder(out)
    try:
        result = render_set(scenes, out, workers=workers, shard=share, progress=not quiet)
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt:
        print("ipadgen render-set: interrupted; the same command resumes (done videos are kept)",
              file=sys.stderr)
        return 130
    part = f"shard {share[0]}/{share[1]}: " if share[1] > 1 else ""
    print(f"render-set {part}{result.share} videos in this share: {result.rendered} rendered, "
          f"{result.already_done} already done, {len(result.failed)} failed")
    if result.committed:
        print(f"committed: {', '.join(sorted(result.committed))}")
    if result.complete:
        print(f"already complete: {', '.join(sorted(result.complete))}")
    for line in result.busy:
        print(f"skipped, another run renders it now: {line}")
    for name, (done, total) in result.pending.items():
        print(f"incomplete (other shards or a rerun finish it): {name} {done}/{total} videos")
    for line in result.failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if result.failed else 0


@verb("verify", "audit a rendered scene; exit 1 on a failed check",
      "Check a rendered scene against a re-plan of its scene.json: layout, label lengths and "
      "values, period labels, meta, masks, and (Blender) that labelled frames differ from their "
      "normal twin inside the mask.")
def cmd_verify(
    scene: Scene,
    frames_per_event: Annotated[int, typer.Option(
        help="labelled frames per anomaly rendered against the twin (first, last, spread between)",
        min=1)] = 3,
    all_frames: Annotated[bool, typer.Option(
        "--all-frames", help="render every labelled frame against its twin")] = False,
    no_render: Annotated[bool, typer.Option(
        "--no-render", help="files, labels, periods, meta and masks only (no Blender)")] = False,
) -> int:
    from ipadgen.verify import verify_scene
    _rendered_scene(scene)
    ok = verify_scene(scene, frames_per_event=frames_per_event, all_frames=all_frames,
                      render=not no_render)
    return 0 if ok else 1


# ------------------------------------------------------------------ entry point

def main(argv: list[str] | None = None) -> int:
    return CLI.main(argv)


if __name__ == "__main__":
    sys.exit(main())

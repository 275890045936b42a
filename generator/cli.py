"""`ipadgen`: render labelled industrial videos in the IPAD layout.

Verbs: render (one scene), devices (what can be rendered), preview (contact sheet of a scene).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from pydantic import ValidationError

from .devices import DEVICES, get_device
from .spec import NuisanceSpec, RenderSpec, SceneSpec, resolve_anomalies

FLAG_OF = {"train_videos": "--train-videos", "test_videos": "--test-videos",
           "cycles": "--cycles", "resolution": "--resolution", "engine": "--engine",
           "seed": "--seed", "name": "--scene-name", "fps": "--fps", "samples": "--samples"}


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    field = next((FLAG_OF[str(p)] for p in reversed(e["loc"]) if str(p) in FLAG_OF),
                 ".".join(map(str, e["loc"])) or "spec")
    return f"{field}: {e['msg'].lower()} (got {e.get('input')!r})"


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


def build_spec(args: argparse.Namespace) -> SceneSpec:
    try:
        device = get_device(args.device)
        anomalies = resolve_anomalies(device, args.anomalies)
    except ValueError as e:
        raise UsageError(str(e)) from None
    name = args.scene_name or re.sub(r"[^A-Za-z0-9_.-]+", "+", f"{args.device}-{args.anomalies}-{args.seed}")
    try:
        render = RenderSpec(resolution=args.resolution, engine=args.engine, samples=args.samples)
        spec = SceneSpec(name=name, device=args.device, params=_parse_params(args.param),
                         anomalies=anomalies, seed=args.seed, train_videos=args.train_videos,
                         test_videos=args.test_videos, cycles=args.cycles, fps=args.fps,
                         render=render,
                         nuisance=NuisanceSpec.off() if args.no_nuisance else NuisanceSpec())
        from .scene import scene_device
        scene_device(spec)  # checks given parameters against their ranges
    except ValidationError as e:
        raise UsageError(_one_line(e)) from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    return spec


def cmd_render(args: argparse.Namespace) -> int:
    spec = build_spec(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created when missing)")
    if (out / spec.name).exists():
        raise UsageError(f"{out / spec.name} already exists; remove it or choose another --scene-name")
    from .render.run import render_scene
    path = render_scene(spec, out, progress=not args.quiet)
    print(f"wrote scene {spec.name} ({spec.train_videos} training, {spec.test_videos} testing "
          f"videos) to {path}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
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


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview import contact_sheet
    scene = Path(args.scene)
    if not (scene / "scene.json").is_file():
        raise UsageError(f"{scene} is not a rendered scene (no scene.json); give <out>/<scene>")
    out = Path(args.out) if args.out else scene / "preview.png"
    contact_sheet(scene, out, frames_per_video=args.frames)
    print(f"wrote {out}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ipadgen", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)

    r = sub.add_parser("render", help="render one scene (training + testing videos with labels)",
                       description="Render one scene of a device into <out>/<scene> in the IPAD "
                                   "layout, with period labels, masks and meta.")
    r.add_argument("--device", default="lifter", help="device family (see `ipadgen devices`)")
    r.add_argument("--anomalies", default="all",
                   help="anomalies of the test videos: a category (appearance, position, motion, "
                        "logic), kind names, a comma list, or all")
    r.add_argument("--out", default="ipad_out", help="output root (default ./ipad_out)")
    r.add_argument("--scene-name", help="scene folder name (default DEVICE-ANOMALIES-SEED)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--train-videos", type=int, default=4)
    r.add_argument("--test-videos", type=int, default=4)
    r.add_argument("--cycles", type=int, default=3, help="work cycles per video")
    r.add_argument("--fps", type=float, default=10.0)
    r.add_argument("--resolution", type=int, default=256, help="frame size in pixels (square)")
    r.add_argument("--engine", default="workbench", help="workbench (fast) or cycles")
    r.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    r.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a device parameter (default: drawn from the seed)")
    r.add_argument("--no-nuisance", action="store_true",
                   help="no light drift, flicker, camera shake or cycle-time variation")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(run=cmd_render)

    d = sub.add_parser("devices", help="list devices, their parameter ranges and anomaly kinds")
    d.set_defaults(run=cmd_devices)

    v = sub.add_parser("preview", help="contact sheet PNG of a rendered scene, masks outlined")
    v.add_argument("scene", help="a rendered scene folder, <out>/<scene>")
    v.add_argument("--out", help="PNG path (default <scene>/preview.png)")
    v.add_argument("--frames", type=int, default=6, help="frames per video")
    v.set_defaults(run=cmd_preview)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        print(f"ipadgen {args.verb}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`ipadgen`: render labelled industrial videos in the IPAD layout.

Verbs: render (one scene), devices (what can be rendered), preview (contact sheet of a scene),
schema (JSON schema of a scene file), sample-scenes (new scene files for pretraining), render-set
(many scene files, parallel, resumable, sharded), verify (audit a rendered scene).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from .devices import DEVICES, get_device
from .spec import NuisanceSpec, RenderSpec, SceneSpec, resolve_anomalies

FLAG_OF = {"train_videos": "--train-videos", "test_videos": "--test-videos",
           "cycles": "--cycles", "resolution": "--resolution", "engine": "--engine",
           "seed": "--seed", "name": "--scene-name", "fps": "--fps", "samples": "--samples",
           "style": "--style"}


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    field = next((FLAG_OF[str(p)] for p in reversed(e["loc"]) if str(p) in FLAG_OF),
                 ".".join(map(str, e["loc"])) or "spec")
    message = e["msg"][:1].lower() + e["msg"][1:]  # only the first letter: a pattern keeps its capitals
    return f"{field}: {message} (got {e.get('input')!r})"


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
    if args.scene_name is not None and not args.scene_name.strip():
        raise UsageError("--scene-name is empty; give a folder name, or leave the option out for DEVICE-ANOMALIES-SEED")
    name = args.scene_name or re.sub(r"[^A-Za-z0-9_.-]+", "+", f"{args.device}-{args.anomalies}-{args.seed}")
    try:
        # --style real: the camera stand-in, on Cycles unless --engine says otherwise
        engine = args.engine or ("cycles" if args.style == "real" else "workbench")
        look = RenderSpec.real if args.style == "real" else RenderSpec
        render = look(resolution=args.resolution, engine=engine, samples=args.samples)
        spec = SceneSpec(name=name, device=args.device, params=_parse_params(args.param),
                         anomalies=anomalies, seed=args.seed, train_videos=args.train_videos,
                         test_videos=args.test_videos, cycles=args.cycles, fps=args.fps,
                         render=render,
                         nuisance=NuisanceSpec.off() if args.no_nuisance else NuisanceSpec(
                             light_color=1500.0 if args.style == "real" else 600.0))
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
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise UsageError(f"--out {out} cannot be written ({e.strerror or e}); give a writable folder") from None
    from .render.run import render_scene
    try:
        path = render_scene(spec, out, progress=not args.quiet)
    except FileExistsError as e:  # an unfinished render of another spec in the way (the message says how to clear it)
        raise UsageError(str(e)) from None
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


def cmd_gallery(args: argparse.Namespace) -> int:
    devices = args.devices.split(",") if args.devices else None
    for name in devices or []:
        try:
            get_device(name)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.resolution < 16:
        raise UsageError(f"--resolution must be at least 16 pixels (got {args.resolution}), as for render")
    from .gallery import write_gallery
    for path in write_gallery(Path(args.out), devices, args.resolution):
        print(f"wrote {path}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from .preview import contact_sheet
    if args.frames < 1:
        raise UsageError(f"--frames must be at least 1 (got {args.frames})")
    scene = Path(args.scene)
    if not (scene / "scene.json").is_file():
        raise UsageError(f"{scene} is not a rendered scene (no scene.json); give <out>/<scene>")
    out = Path(args.out) if args.out else scene / "preview.png"
    contact_sheet(scene, out, frames_per_video=args.frames)
    print(f"wrote {out}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json
    print(json.dumps(SceneSpec.model_json_schema(), indent=1))
    return 0


def cmd_sample_scenes(args: argparse.Namespace) -> int:
    from .sets import sample_scenes, spec_yaml, write_scene_file
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None
    if args.n < 1:
        raise UsageError(f"--n must be at least 1 (got {args.n})")
    try:
        specs = sample_scenes(args.n, args.seed, devices, train_videos=args.train_videos,
                              test_videos=args.test_videos, cycles=args.cycles, fps=args.fps,
                              resolution=args.resolution,
                              engine=args.engine or ("cycles" if args.style == "real" else "workbench"),
                              style=args.style)
    except ValidationError as e:
        raise UsageError(_one_line(e)) from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created when missing)")
    header = f"ipadgen sample-scenes --seed {args.seed}; fields: ipadgen schema"
    clash = [out / f"{s.name}.yaml" for s in specs if (out / f"{s.name}.yaml").exists()
             and (out / f"{s.name}.yaml").read_text() != spec_yaml(s, header)]
    if clash:
        raise UsageError(f"{clash[0]} exists with other content; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        write_scene_file(spec, out / f"{spec.name}.yaml", header)
    families = sorted({s.device for s in specs})
    print(f"wrote {len(specs)} scene specs to {out} (devices: {', '.join(families)})")
    return 0


def _load_specs(paths: list[str]):
    from .sets import SceneFileError, load_scene_files
    try:
        return load_scene_files([Path(p) for p in paths])
    except SceneFileError as e:
        raise UsageError(str(e)) from None


def cmd_render_set(args: argparse.Namespace) -> int:
    from .render.run import parse_shard, render_set
    try:
        shard = parse_shard(args.shard) if args.shard else (1, 1)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1 (got {args.workers})")
    specs = _load_specs(args.specs)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created when missing)")
    try:
        result = render_set(specs, out, workers=args.workers, shard=shard,
                            progress=not args.quiet)
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt:
        print("ipadgen render-set: interrupted; the same command resumes (done videos are kept)",
              file=sys.stderr)
        return 130
    share = f"shard {shard[0]}/{shard[1]}: " if shard[1] > 1 else ""
    print(f"render-set {share}{result.share} videos in this share: {result.rendered} rendered, "
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


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_scene
    scene = Path(args.scene)
    if not (scene / "scene.json").is_file():
        raise UsageError(f"{scene} is not a rendered scene (no scene.json); give <out>/<scene>")
    if args.frames_per_event < 1:
        raise UsageError(f"--frames-per-event must be at least 1 (got {args.frames_per_event})")
    ok = verify_scene(scene, frames_per_event=args.frames_per_event, all_frames=args.all_frames,
                      render=not args.no_render)
    return 0 if ok else 1


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
    r.add_argument("--engine", help="workbench (fast, default) or cycles (default for --style real)")
    r.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    r.add_argument("--style", default="synthetic", choices=["synthetic", "real"],
                   help="synthetic: clean IPAD-like look; real: a stand-in for camera footage "
                        "(Cycles, worn colours, sensor noise, motion blur, lens distortion, JPEG 80, "
                        "stronger white-balance drift)")
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

    g = sub.add_parser("gallery", help="per device, every anomaly kind beside its normal twin (PNGs)")
    g.add_argument("--out", default="docs/gallery", help="folder for the PNGs and index.md")
    g.add_argument("--devices", help="comma list (default: every device)")
    g.add_argument("--resolution", type=int, default=192)
    g.set_defaults(run=cmd_gallery)

    sc = sub.add_parser("schema", help="print the JSON schema of a scene file (SceneSpec)")
    sc.set_defaults(run=cmd_schema)

    ss = sub.add_parser("sample-scenes", help="write N new, different scene specs (YAML)",
                        description="Write N new scene specs for pretraining: random device "
                                    "families, parameters inside their ranges, cameras, light "
                                    "and nuisance levels, anomaly mixes. Deterministic per seed "
                                    "(for the same device families).")
    ss.add_argument("--n", type=int, required=True, help="how many scenes")
    ss.add_argument("--seed", type=int, default=0)
    ss.add_argument("--out", required=True, help="folder for the <name>.yaml files")
    ss.add_argument("--devices", help="comma list of families to draw from (default: all)")
    ss.add_argument("--train-videos", type=int, default=4)
    ss.add_argument("--test-videos", type=int, default=4)
    ss.add_argument("--cycles", type=int, default=3)
    ss.add_argument("--fps", type=float, default=10.0)
    ss.add_argument("--resolution", type=int, default=256)
    ss.add_argument("--engine", help="workbench (default) or cycles (default for --style real)")
    ss.add_argument("--style", default="synthetic", choices=["synthetic", "real"],
                    help="synthetic (IPAD-like) or real (camera stand-in, see `render --help`)")
    ss.set_defaults(run=cmd_sample_scenes)

    rs = sub.add_parser("render-set", help="render scene files: parallel, resumable, sharded",
                        description="Render every video of the given scene files into "
                                    "<out>/<scene>, one video per worker process. Finished "
                                    "videos are skipped, unfinished ones redone; a scene appears "
                                    "only when all its videos are done. --shard K/N renders a "
                                    "fixed 1/N share (see docs/scale.md).")
    rs.add_argument("specs", nargs="+", metavar="SPEC",
                    help="scene files (YAML), or folders of them")
    rs.add_argument("--out", required=True, help="output root")
    rs.add_argument("--workers", type=int, default=1, help="videos rendered at once (processes)")
    rs.add_argument("--shard", metavar="K/N", help="render only share K of N (1-based)")
    rs.add_argument("--quiet", action="store_true", help="no progress bar")
    rs.set_defaults(run=cmd_render_set)

    ve = sub.add_parser("verify", help="audit a rendered scene; exit 1 on a failed check",
                        description="Check a rendered scene against a re-plan of its scene.json: "
                                    "layout, label lengths and values, period labels, meta, "
                                    "masks, and (Blender) that labelled frames differ from their "
                                    "normal twin inside the mask.")
    ve.add_argument("scene", help="a rendered scene folder, <out>/<scene>")
    ve.add_argument("--frames-per-event", type=int, default=3,
                    help="labelled frames per anomaly rendered against the twin (first, last, "
                         "spread between; default 3)")
    ve.add_argument("--all-frames", action="store_true",
                    help="render every labelled frame against its twin")
    ve.add_argument("--no-render", action="store_true",
                    help="files, labels, periods, meta and masks only (no Blender)")
    ve.set_defaults(run=cmd_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        for line in str(e).splitlines() or [""]:  # one line per problem
            print(f"ipadgen {args.verb}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`ipadgen verify ROOT/SCENE`: audit a rendered scene against a re-plan of its scene.json.

Everything a scene holds follows from its spec, so the audit re-plans every video (pure numpy, no
Blender) and compares:

- layout: every expected video folder, frame, mask, label, period and meta file, nothing extra
  (no leftover temp files);
- labels: one uint8 per frame on disk, equal to the re-planned labels;
- period: one (cycle, phase) per frame, phase in [0, 1), cycle index non-decreasing, equal to
  the re-plan;
- meta: equal to the re-plan (cycle boundaries, nuisance values, every anomaly's span);
- masks: non-empty exactly on the labelled frames;
- pixels (Blender): the first and last frame of every video and the checked labelled frames,
  re-rendered (and finished like the writer does for the real style), equal the stored JPEGs
  (re-encoded the same way; tolerance for another machine's Blender: mean difference under
  2 levels);
- twin (Blender): each checked labelled frame differs from its normal twin (the same frame with
  the program as it should be, same nuisances; raw renders) inside the stored mask by at least
  VISIBLE grey levels. Checked frames: per anomaly the first, the last and evenly spread ones between,
  --frames-per-event in all (default 3), or every labelled frame with --all-frames. The table
  says how many of how many labelled frames were rendered.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ipadgen.contract import (
    FRAME_SUFFIX,
    FRAMES,
    MASK_SUFFIX,
    MASKS,
    META,
    PERIOD,
    TEST_LABEL,
    frame_name,
    label_name,
    label_path,
    meta_path,
    period_path,
    release_labels_path,
    video_name,
)
from ipadgen.scene import VideoPlan, plan_video, scene_camera, scene_device, video_jobs
from ipadgen.sets import SceneFileError, validate_scene

VISIBLE = 8  # grey levels (0-255, any channel) a twin must differ by on at least one mask pixel
MATCH = 2.0  # mean absolute difference allowed between a stored frame and its re-render


@dataclass
class Row:
    check: str
    video: str
    ok: bool | None  # None: skipped
    detail: str


def _spread(frames: list[int], k: int) -> list[int]:
    if len(frames) <= k:
        return frames
    idx = np.linspace(0, len(frames) - 1, k).round().astype(int)
    return sorted({frames[i] for i in idx})


class _Video:
    def __init__(self, scene: Path, plan: VideoPlan):
        self.scene, self.plan = scene, plan
        self.split, self.name = plan.split, video_name(plan.index)
        self.label = f"{plan.split}/{self.name}"
        self.expected = [f"{frame_name(i, plan.n_frames)}" for i in range(plan.n_frames)]

    def frames_dir(self) -> Path:
        return self.scene / self.split / FRAMES / self.name

    def mask_path(self, f: int) -> Path:
        return self.scene / "testing" / MASKS / self.name / f"{self.expected[f]}{MASK_SUFFIX}"


def _names(folder: Path, suffix: str = "") -> list[str] | None:
    if not folder.is_dir():
        return None
    return sorted(p.name for p in folder.iterdir())


def _compare_names(found: list[str] | None, expected: list[str], suffix: str, what: str) -> tuple[bool, str]:
    if found is None:
        return False, f"{what} folder missing"
    want = [e + suffix for e in expected]
    missing = sorted(set(want) - set(found))
    extra = sorted(set(found) - set(want))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''} "
                         f"({len(missing)} of {len(want)})")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}")
        return False, "; ".join(parts)
    return True, f"{len(want)} {what}"


def _check_layout(scene: Path, spec) -> Row:
    problems = []
    for split, n in (("training", spec.train_videos), ("testing", spec.test_videos)):
        want = [video_name(i) for i in range(1, n + 1)]
        subs = (FRAMES, MASKS) if split == "testing" else (FRAMES,)
        for sub in subs:
            found = _names(scene / split / sub, "") if n else []
            if n and found is None:
                problems.append(f"{split}/{sub} missing")
            elif found is not None and sorted(found) != want:
                problems.append(f"{split}/{sub} holds {found}, expected {want}")
        for sub in (PERIOD, META):
            ext = ".npy" if sub == PERIOD else ".json"
            found = _names(scene / split / sub, "") if n else []
            if n and found is None:
                problems.append(f"{split}/{sub} missing")
            elif found is not None and sorted(found) != [w + ext for w in want]:
                problems.append(f"{split}/{sub} holds {found}")
    labels = _names(scene / TEST_LABEL, "") if spec.test_videos else []
    want = [label_name(i) for i in range(1, spec.test_videos + 1)]
    if labels is None:
        problems.append("test_label missing")
    elif labels != want:
        problems.append(f"test_label holds {labels}, expected {want}")
    elif want:
        problems += _release_label_problems(scene, want)
    leftovers = [str(p.relative_to(scene)) for p in scene.rglob(".*")]
    if leftovers:
        problems.append(f"leftover temp files: {', '.join(leftovers[:3])}")
    if problems:
        return Row("layout", "scene", False, "; ".join(problems))
    return Row("layout", "scene", True,
               f"{spec.train_videos} training + {spec.test_videos} testing videos, no leftovers")


def _release_label_problems(scene: Path, label_files: list[str]) -> list[str]:
    """frame_labels_<scene>.npy must be the test_label files joined in order, shape (1, N)."""
    path = release_labels_path(scene)
    if not path.is_file():
        return [f"{path.name} missing"]
    try:
        joined = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        return [f"{path.name} cannot be read ({error})"]
    parts = [np.load(scene / TEST_LABEL / name, allow_pickle=False).reshape(-1) for name in label_files]
    if joined.shape != (1, sum(len(p) for p in parts)) or not np.array_equal(joined[0], np.concatenate(parts)):
        return [f"{path.name} (shape {joined.shape}) is not test_label/ joined in video order"]
    return []


def _check_frames(v: _Video, resolution: int) -> Row:
    """Every frame there by name, and every one decodes whole at the scene's resolution (a file cut
    short by a full disk or a killed copy has the right name and a broken picture)."""
    ok, detail = _compare_names(_names(v.frames_dir(), FRAME_SUFFIX), v.expected, FRAME_SUFFIX, "frames")
    if not ok:
        return Row("frames", v.label, ok, detail)
    broken = []
    for name in v.expected:
        try:
            with Image.open(v.frames_dir() / f"{name}{FRAME_SUFFIX}") as image:
                image.load()
                if image.size != (resolution, resolution):
                    raise ValueError(f"{image.size[0]}x{image.size[1]} pixels, not {resolution}x{resolution}")
        except (OSError, ValueError) as error:
            broken.append(f"{name}.jpg ({error})")
    if broken:
        more = f" and {len(broken) - 3} more" if len(broken) > 3 else ""
        return Row("frames", v.label, False, f"{len(broken)} frame(s) do not decode: {'; '.join(broken[:3])}{more}")
    return Row("frames", v.label, True, f"{detail}, all decode")


def _check_period(v: _Video) -> Row:
    path = period_path(v.scene, v.split, v.name)
    if not path.is_file():
        return Row("period", v.label, False, f"{path.name} missing")
    try:
        period = np.load(path, allow_pickle=False)
        cycle, phase = period["cycle"], period["phase"]
    except Exception as e:  # noqa: BLE001
        return Row("period", v.label, False, f"unreadable ({e})")
    n_disk = len(_names(v.frames_dir(), FRAME_SUFFIX) or [])
    problems = []
    if len(period) != n_disk:
        problems.append(f"{len(period)} entries for {n_disk} frames on disk")
    if len(phase) and not np.all((phase >= 0) & (phase < 1)):
        problems.append(f"phase outside [0, 1) at frame {int(np.nonzero((phase < 0) | (phase >= 1))[0][0])}")
    if len(cycle) > 1 and np.any(np.diff(cycle) < 0):
        problems.append(f"cycle index decreases at frame {int(np.nonzero(np.diff(cycle) < 0)[0][0]) + 1}")
    p = v.plan.program
    if len(period) == v.plan.n_frames:
        bad = np.nonzero((cycle != p.cycle) | (phase != p.phase))[0]
        if len(bad):
            problems.append(f"differs from the re-plan at {len(bad)} frames, first {int(bad[0])}")
    elif len(period) != n_disk or n_disk != v.plan.n_frames:
        problems.append(f"the re-plan has {v.plan.n_frames} frames")
    if problems:
        return Row("period", v.label, False, "; ".join(problems))
    return Row("period", v.label, True, f"{len(period)} frames, cycles {int(cycle[0])}..{int(cycle[-1])}, "
                                        f"matches the re-plan")


def _check_meta(v: _Video) -> Row:
    path = meta_path(v.scene, v.split, v.name)
    if not path.is_file():
        return Row("meta", v.label, False, f"{path.name} missing")
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        return Row("meta", v.label, False, f"not JSON ({e})")
    want = json.loads(json.dumps(v.plan.meta()))
    if meta != want:
        keys = sorted(k for k in set(meta) | set(want) if meta.get(k) != want.get(k))
        return Row("meta", v.label, False, f"differs from the re-plan in {', '.join(keys)}")
    return Row("meta", v.label, True, f"{len(meta.get('anomalies', []))} anomalies, matches the re-plan"
               if v.split == "testing" else "matches the re-plan")


def _check_labels(v: _Video) -> Row:
    path = label_path(v.scene, v.plan.index)
    if not path.is_file():
        return Row("labels", v.label, False, f"test_label/{path.name} missing")
    try:
        labels = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        return Row("labels", v.label, False, f"unreadable ({e})")
    n_disk = len(_names(v.frames_dir(), FRAME_SUFFIX) or [])
    problems = []
    if labels.dtype != np.uint8 or labels.ndim != 1:
        problems.append(f"dtype {labels.dtype}, shape {labels.shape}; expected 1-D uint8")
    if len(labels) != n_disk:
        problems.append(f"{len(labels)} labels for {n_disk} frames on disk")
    want = v.plan.program.labels
    if len(labels) == len(want):
        bad = np.nonzero(labels != want)[0]
        if len(bad):
            problems.append(f"differs from the re-plan at {len(bad)} frames, first {int(bad[0])} "
                            f"(stored {int(labels[bad[0]])}, planned {int(want[bad[0]])})")
    else:
        problems.append(f"the re-plan has {len(want)} frames")
    if problems:
        return Row("labels", v.label, False, "; ".join(problems))
    return Row("labels", v.label, True, f"{int(labels.sum())} of {len(labels)} frames anomalous")


def _check_masks(v: _Video) -> Row:
    folder = v.scene / "testing" / MASKS / v.name
    ok, detail = _compare_names(_names(folder, MASK_SUFFIX), v.expected, MASK_SUFFIX, "masks")
    if not ok:
        return Row("masks", v.label, False, detail)
    labels = v.plan.program.labels
    wrong = []
    for f in range(v.plan.n_frames):
        on = bool((np.asarray(Image.open(v.mask_path(f))) > 127).any())
        if on != bool(labels[f]):
            wrong.append(f)
    if wrong:
        return Row("masks", v.label, False, f"mask {'empty' if labels[wrong[0]] else 'set'} on "
                                            f"{'anomalous' if labels[wrong[0]] else 'normal'} frame "
                                            f"{wrong[0]} ({len(wrong)} frames)")
    return Row("masks", v.label, True, f"non-empty exactly on the {int(labels.sum())} labelled frames")


def _jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(int)


def _finished(v: _Video, renderer, spec, f: int) -> np.ndarray:
    """Frame f as the writer stored it: the render, and for the real style the per-video finishing
    (motion blur needs the previous frame, the sensor noise stream is advanced to frame f)."""
    poses, nuisance = v.plan.program.poses, v.plan.nuisance
    raw = renderer.render(poses[f], nuisance.frame(f))
    if getattr(spec.render, "style", "synthetic") == "synthetic":
        return raw
    from ipadgen.render.style import FrameFinisher
    finish = FrameFinisher(spec.render, v.plan.seed)
    for _ in range(max(f - 1, 0)):  # one noise draw per earlier frame
        finish.rng.normal(0.0, 1.0, size=raw.shape)
    if f > 0:
        finish.frame(renderer.render(poses[f - 1], nuisance.frame(f - 1)))
    return finish.frame(raw)


def _check_pixels(v: _Video, renderer, spec, checked: list[int]) -> Row:
    frames = sorted({0, v.plan.n_frames - 1, *checked})
    worst, at = 0.0, None
    for f in frames:
        path = v.frames_dir() / f"{v.expected[f]}{FRAME_SUFFIX}"
        if not path.is_file():
            return Row("pixels", v.label, False, f"frame {v.expected[f]}.jpg missing")
        stored = np.asarray(Image.open(path).convert("RGB")).astype(int)
        again = _jpeg_roundtrip(_finished(v, renderer, spec, f), spec.render.jpeg_quality)
        if stored.shape != again.shape:
            return Row("pixels", v.label, False, f"frame {f}: {stored.shape[:2]} px, expected "
                                                 f"{again.shape[:2]}")
        diff = float(np.abs(stored - again).mean())
        if diff > worst:
            worst, at = diff, f
    if worst > MATCH:
        return Row("pixels", v.label, False, f"frame {at} is not the planned frame (mean difference "
                                             f"{worst:.1f} levels from its re-render)")
    return Row("pixels", v.label, True, f"{len(frames)} frames equal their re-render "
                                        f"(worst mean difference {worst:.2f})")


def _check_twin(v: _Video, renderer, checked: list[int], n_labelled: int) -> Row:
    weakest, at = None, None
    for f in checked:
        mask_path = v.mask_path(f)
        if not mask_path.is_file():
            return Row("twin", v.label, False, f"mask of frame {f} missing")
        mask = np.asarray(Image.open(mask_path)) > 127
        nuisance = v.plan.nuisance.frame(f)
        anomalous = renderer.render(v.plan.program.poses[f], nuisance).astype(int)
        twin = renderer.render(v.plan.program.reference_poses[f], nuisance).astype(int)
        diff = np.abs(anomalous - twin).max(axis=2)
        inside = int(diff[mask].max()) if mask.any() else 0
        if weakest is None or inside < weakest:
            weakest, at = inside, f
        if inside < VISIBLE:
            return Row("twin", v.label, False,
                       f"frame {f} is labelled anomalous but differs from its normal twin by only "
                       f"{inside} levels inside its mask (< {VISIBLE})")
    return Row("twin", v.label, True, f"{len(checked)} of {n_labelled} labelled frames rendered; "
                                      f"each differs from its twin inside the mask (weakest "
                                      f"{weakest} levels, frame {at})")


def audit(scene: Path, frames_per_event: int = 3, all_frames: bool = False,
          render: bool = True) -> list[Row]:
    scene = Path(scene)
    try:
        record = json.loads((scene / "scene.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [Row("spec", "scene", False, f"scene.json cannot be read as JSON ({e})")]
    if not isinstance(record, dict):
        return [Row("spec", "scene", False, f"scene.json holds a {type(record).__name__}, not an object "
                                            f"with the scene's spec")]
    try:
        spec = validate_scene(record.get("spec"), f"{scene}/scene.json")
    except SceneFileError as e:
        return [Row("spec", "scene", False, e.lines[0])]
    device = scene_device(spec)
    rows = [Row("spec", "scene", True, f"{spec.name}: {spec.device}, seed {spec.seed}"),
            _check_layout(scene, spec)]
    plans = [plan_video(spec, device, split, index) for split, index in video_jobs(spec)]
    videos = [_Video(scene, p) for p in plans]
    renderer = None
    if render:
        try:
            from ipadgen.render.blender import BlenderRenderer
            renderer = BlenderRenderer(device.parts(), scene_camera(spec, device), spec.render)
        except ImportError:
            renderer = None
    try:
        for v in videos:
            frames_row = _check_frames(v, spec.render.resolution)
            rows += [frames_row, _check_period(v), _check_meta(v)]
            masks_row = None
            checked: list[int] = []
            n_labelled = int(v.plan.program.labels.sum())
            if v.split == "testing":
                masks_row = _check_masks(v)
                rows += [_check_labels(v), masks_row]
                for ev in v.plan.program.events:
                    if ev["first_frame"] is None:
                        continue
                    span = [f for f in range(ev["first_frame"], ev["last_frame"] + 1)
                            if v.plan.program.labels[f]]
                    checked += span if all_frames else _spread(span, frames_per_event)
                checked = sorted(set(checked))
            if renderer is None:
                why = "skipped: no Blender (bpy) here" if render else "skipped (--no-render)"
                rows.append(Row("pixels", v.label, None, why))
                if checked:
                    rows.append(Row("twin", v.label, None, why))
                continue
            if not frames_row.ok:
                rows.append(Row("pixels", v.label, None, "skipped: frames incomplete"))
            else:
                rows.append(_check_pixels(v, renderer, spec, checked))
            if checked:
                rows.append(_check_twin(v, renderer, checked, n_labelled) if masks_row.ok
                            else Row("twin", v.label, None, "skipped: masks incomplete"))
    finally:
        if renderer is not None:
            renderer.close()
    return rows


def print_table(scene: Path, rows: list[Row]) -> None:
    w_check = max(len(r.check) for r in rows)
    w_video = max(len(r.video) for r in rows)
    print(f"verify {scene}")
    print(f"{'check':{w_check}}  {'video':{w_video}}  result  detail")
    for r in rows:
        result = "ok" if r.ok else ("skip" if r.ok is None else "FAIL")
        print(f"{r.check:{w_check}}  {r.video:{w_video}}  {result:6s}  {r.detail}")
    failed = sum(r.ok is False for r in rows)
    skipped = sum(r.ok is None for r in rows)
    print(f"{len(rows)} checks: {len(rows) - failed - skipped} ok, {failed} failed, {skipped} skipped")


def verify_scene(scene: Path, frames_per_event: int = 3, all_frames: bool = False,
                 render: bool = True) -> bool:
    rows = audit(scene, frames_per_event, all_frames, render)
    print_table(scene, rows)
    return not any(r.ok is False for r in rows)

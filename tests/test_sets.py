"""Scene sets: the S01-S12 files, scene-file errors, sample-scenes, schema; render-set in shards
and after a kill (real Blender renders in worker processes: lifter, 48 px, 3 fps)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ipadgen.cli import main
from ipadgen.devices import DEVICES
from ipadgen.sets import BENCHMARK_FAMILIES, load_scene_file

SCENES = Path(__file__).resolve().parents[1] / "scenes"


# --------------------------------------------------------------------- scene files (no Blender)


@pytest.mark.parametrize("index, family", list(enumerate(BENCHMARK_FAMILIES, start=1)))
def test_reference_scene_file_is_complete_and_valid(index, family):
    if family not in DEVICES:
        pytest.skip(f"device family {family} does not exist yet")
    path = SCENES / f"S{index:02d}.yaml"
    fix = "regenerate with: python -m ipadgen.sets scenes"
    assert path.is_file(), f"{path} missing; {fix}"
    spec = load_scene_file(path)  # raises with field-level lines on any problem
    assert spec.name == f"S{index:02d}" and spec.device == family
    assert set(spec.params) == set(DEVICES[family].params), f"every parameter written out; {fix}"
    assert set(spec.anomalies) == set(DEVICES[family].anomalies), \
        f"every anomaly kind of the family; {fix}"
    raw = yaml.safe_load(path.read_text())
    assert {"render", "nuisance", "camera", "seed", "fps", "cycles"} <= set(raw), "the full spec"


def test_schema_is_the_scene_spec_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "SceneSpec" and schema["additionalProperties"] is False
    assert {"name", "device", "params", "anomalies", "render", "nuisance", "camera"} <= set(
        schema["properties"])


def _read_dir(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.yaml"))}


def test_sample_scenes_deterministic_per_seed_and_different_across_seeds(tmp_path, capsys):
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert main(["sample-scenes", "--n", "5", "--seed", str(seed), "--out",
                     str(tmp_path / name)]) == 0
    a, b, c = (_read_dir(tmp_path / n) for n in "abc")
    assert len(a) == 5 and a == b, "same seed, same files byte for byte"
    assert set(a.values()).isdisjoint(c.values()), "another seed, other scenes"
    specs = [load_scene_file(tmp_path / "a" / n) for n in a]  # every file validates
    assert len({s.name for s in specs}) == 5 and len({s.seed for s in specs}) == 5
    for s in specs:  # parameters drawn inside the ranges of the family, an anomaly mix
        ranges = DEVICES[s.device].params
        assert set(s.params) == set(ranges)
        assert all(ranges[k].low <= v <= ranges[k].high for k, v in s.params.items())
        assert set(s.anomalies) <= set(DEVICES[s.device].anomalies) and s.anomalies
    assert len({json.dumps(s.params, sort_keys=True) for s in specs}) == 5
    assert len({s.camera for s in specs}) == 5 and len({s.nuisance for s in specs}) == 5
    # the first scenes of a larger sample are the same scenes
    assert main(["sample-scenes", "--n", "7", "--seed", "7", "--out", str(tmp_path / "d")]) == 0
    d = _read_dir(tmp_path / "d")
    assert all(d[n] == a[n] for n in a)


GOOD = {"name": "G", "device": "lifter", "anomalies": ["stall"], "train_videos": 1,
        "test_videos": 1, "cycles": 2, "fps": 3, "render": {"resolution": 48}}


@pytest.mark.parametrize("change, needles", [
    ({"device": "toaster"}, ["device: unknown device 'toaster'; allowed: " + ", ".join(DEVICES)]),
    ({"anomalies": ["stall", "explosion"]},
     ["anomalies.1: unknown anomaly kind 'explosion' of lifter; allowed: load_color"]),
    ({"params": {"lift_height": 7.0}}, ["params.lift_height: 7.0 is outside the range of lifter"]),
    ({"params": {"wings": 2}}, ["params.wings: unknown parameter of lifter; allowed: table_length"]),
    ({"colour": "red"}, ["colour: unknown field; allowed fields here: name, device"]),
    ({"render": {"resolution": 0, "engine": "eevee"}},
     ["render.resolution: Input should be greater than or equal to 16; got 0",
      "render.engine: Input should be 'workbench' or 'cycles'; got 'eevee'"]),
    ({"cycles": "many", "name": "a b"}, ["cycles: Input should be a valid integer",
                                         "name: String should match pattern"]),
    ({"camera": {"azimuth": [5]}}, ["camera.azimuth: item 1 is missing"]),
    ({"cycles": 100000, "train_videos": 100000},  # planned up front: gigabytes before the first frame
     ["cycles: Input should be less than or equal to 200", "train_videos: Input should be less than or equal to 1000"]),
])
def test_bad_scene_files_give_field_level_errors(tmp_path, capsys, change, needles):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    out = tmp_path / "out"
    assert main(["render-set", str(path), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(needles), lines  # one line per wrong field, all of them
    for needle in needles:
        assert any(needle in ln and str(path) in ln for ln in lines), (needle, lines)
    assert not out.exists(), "nothing written"


def test_scene_file_problems_of_several_files_together(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("name: [\n")
    (tmp_path / "b.yaml").write_text("- just\n- a list\n")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(GOOD))
    assert main(["render-set", *(str(tmp_path / f"{n}.yaml") for n in "ab"), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "a.yaml: not valid YAML: line 2" in err and "b.yaml: a scene file holds one mapping" in err
    assert main(["render-set", str(tmp_path / "c.yaml"), str(tmp_path / "d.yaml"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "name: scene name 'G' is also used by" in capsys.readouterr().err


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]"
                                                     for a, b in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")  # about 0.5 KB; 9^9 strings once expanded
    assert main(["render-set", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "line 2: YAML aliases (*a) are not allowed in a scene file" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, needle", [
    (["--shard", "3/2"], "--shard expects K/N"),
    (["--shard", "0/2"], "--shard expects K/N"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_bad_render_set_options(tmp_path, capsys, args, needle):
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(GOOD))
    assert main(["render-set", str(tmp_path / "g.yaml"), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------- render-set (Blender)

TINY = [  # two scenes, four videos: sorted tasks A/testing/01, A/testing/02, A/training/01, B/training/01
    {"name": "A", "device": "lifter", "anomalies": ["load_color", "stall", "load_shift"], "seed": 3,
     "train_videos": 1, "test_videos": 2, "cycles": 2, "fps": 3, "render": {"resolution": 48}},
    {"name": "B", "device": "lifter", "anomalies": ["jerk"], "seed": 4, "train_videos": 1,
     "test_videos": 0, "cycles": 1, "fps": 3, "render": {"resolution": 48}},
]


@pytest.fixture(scope="module")
def spec_files(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("specs")
    paths = []
    for spec in TINY:
        path = folder / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec))
        paths.append(str(path))
    return paths


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipadgen.cli", *args], capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def whole(spec_files, tmp_path_factory) -> Path:
    """The set rendered on one machine, unsharded, two workers."""
    pytest.importorskip("bpy")
    out = tmp_path_factory.mktemp("whole")
    r = _cli("render-set", *spec_files, "--out", str(out), "--workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "4 rendered" in r.stdout and "committed: A, B" in r.stdout
    return out


def _files(scene: Path) -> list[str]:
    return sorted(str(p.relative_to(scene)) for p in scene.rglob("*") if p.is_file())


def assert_same_set(a: Path, b: Path) -> None:
    """Same scenes, same files; labels, periods and meta byte for byte; frames and masks equal
    when decoded."""
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir()) == ["A", "B"]
    for scene in ("A", "B"):
        files = _files(a / scene)
        assert files == _files(b / scene)
        for rel in files:
            pa, pb = a / scene / rel, b / scene / rel
            if rel.endswith((".npy", ".json")) and rel != "scene.json":
                assert pa.read_bytes() == pb.read_bytes(), rel
            elif rel.endswith((".jpg", ".png")):
                np.testing.assert_array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)),
                                              err_msg=rel)
        ja, jb = (json.loads((d / scene / "scene.json").read_text()) for d in (a, b))
        assert ja["spec"] == jb["spec"]


@pytest.mark.blender
@pytest.mark.slow
def test_shards_together_equal_the_unsharded_set(spec_files, whole, tmp_path):
    # separate folders, one per machine
    one, two = tmp_path / "one", tmp_path / "two"
    r = _cli("render-set", *spec_files, "--out", str(one), "--shard", "1/2", "--quiet")
    assert r.returncode == 0 and "2 videos in this share: 2 rendered" in r.stdout, r.stdout + r.stderr
    assert not (one / "A").exists() and not (one / "B").exists(), "shard 1 completes no scene"
    r = _cli("render-set", *spec_files, "--out", str(two), "--shard", "2/2", "--quiet")
    assert r.returncode == 0 and "committed: B" in r.stdout, r.stdout  # all of B is in shard 2
    assert not (two / "A").exists()
    # copied together, a run without --shard renders nothing and commits what is complete
    merged = tmp_path / "merged"
    for part in (one, two):
        shutil.copytree(part, merged, dirs_exist_ok=True)
    r = _cli("render-set", *spec_files, "--out", str(merged), "--quiet")
    assert r.returncode == 0 and "0 rendered, 4 already done" in r.stdout, r.stdout
    assert "committed: A" in r.stdout and not list(merged.glob(".*"))
    assert_same_set(merged, whole)
    # one shared folder: the shard that finishes a scene's last video commits it
    shared = tmp_path / "shared"
    shutil.copytree(one, shared)
    r = _cli("render-set", *spec_files, "--out", str(shared), "--shard", "2/2", "--quiet")
    assert r.returncode == 0 and "committed: A, B" in r.stdout, r.stdout
    assert not list(shared.glob(".*"))
    assert_same_set(shared, whole)


@pytest.mark.blender
@pytest.mark.slow
def test_render_set_killed_midway_restarts_complete_and_correct(spec_files, whole, tmp_path):
    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "ipadgen.cli", "render-set", *spec_files, "--out", str(out),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = out / ".A.partial" / "testing" / "meta" / "01.json"  # the first task in the order
    deadline = time.time() + 300
    while not first.exists():
        assert proc.poll() is None and time.time() < deadline, "render-set ended before the cut"
        time.sleep(0.05)
    time.sleep(0.5)  # into the next video
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker processes
    proc.wait()
    assert not (out / "A").exists() and not (out / "B").exists(), "nothing half-written visible"
    r = _cli(*cmd[3:])
    assert r.returncode == 0, r.stderr
    assert "rendered" in r.stdout and "already done" in r.stdout
    assert int(r.stdout.split(" already done")[0].rsplit(" ", 1)[1]) >= 1, r.stdout
    assert not list(out.glob(".*"))
    assert_same_set(out, whole)
    # a finished set is skipped as a whole
    r = _cli(*cmd[3:])
    assert r.returncode == 0 and "0 rendered" in r.stdout and "already complete: A, B" in r.stdout


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.blender
@pytest.mark.slow
def test_workers_die_with_a_killed_parent_and_a_rerun_with_more_workers_is_whole(spec_files, whole, tmp_path):
    """Issue 15, case 1: kill -9 only the parent of `render-set --workers 2`, rerun with
    --workers 3: orphaned workers used to go on writing frames of videos the rerun redid."""
    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "ipadgen.cli", "render-set", *spec_files, "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd + ["--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(_children(proc.pid)) < 2:  # both workers rendering
        assert proc.poll() is None and time.time() < deadline, "render-set ended before the cut"
        time.sleep(0.05)
    workers = _children(proc.pid)
    proc.kill()  # the parent alone
    proc.wait()
    deadline = time.time() + 10
    while any(_alive(w) for w in workers):
        assert time.time() < deadline, "worker processes outlived their parent"
        time.sleep(0.1)
    assert not (out / "A").exists() and not (out / "B").exists()
    r = _cli(*cmd[3:], "--workers", "3")
    assert r.returncode == 0 and "0 failed" in r.stdout and "committed: A, B" in r.stdout, r.stdout + r.stderr
    assert not list(out.glob(".*"))
    assert_same_set(out, whole)


@pytest.mark.blender
@pytest.mark.slow
def test_a_video_locked_by_a_live_run_is_left_to_it_and_a_stale_lock_is_taken_over(spec_files, tmp_path):
    import socket

    from ipadgen.render.run import scene_record
    from ipadgen.writer import SceneWriter

    out = tmp_path / "locked"
    SceneWriter(out, "B", scene_record(load_scene_file(Path(spec_files[1]))))  # B's staging folder
    locks = out / ".B.partial" / ".locks"
    locks.mkdir()
    (locks / "training-01.lock").write_text(f"{socket.gethostname()} {os.getpid()}")  # this test runs: live
    r = _cli("render-set", spec_files[1], "--out", str(out), "--quiet")
    assert r.returncode == 0 and "skipped, another run renders it now: B: training video 01" in r.stdout, r.stdout
    assert f"{socket.gethostname()} {os.getpid()}" in r.stdout and not (out / "B").exists()
    (locks / "training-01.lock").write_text(f"{socket.gethostname()} 4194305")  # no such process: stale
    r = _cli("render-set", spec_files[1], "--out", str(out), "--quiet")
    assert r.returncode == 0 and "1 rendered" in r.stdout and "committed: B" in r.stdout, r.stdout + r.stderr
    assert not list(out.glob(".*")) and not list((out / "B").glob(".*"))

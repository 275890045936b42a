"""The package as a user gets it: a wheel built from the sources, installed into a fresh venv
outside the checkout, renders a frame (its materials come from package data, not the checkout)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "generator", "detector")

pytestmark = [pytest.mark.slow, pytest.mark.blender,
              pytest.mark.skipif(importlib.util.find_spec("bpy") is None, reason="bpy is not installed")]


def _run(argv: list, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the build writes build/ and *.egg-info next to them)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    # No build isolation: setuptools comes from the [test] extra, nothing is downloaded.
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist, src], cwd=src)
    (built,) = dist.glob("ipad_vad-*.whl")
    return built


def test_the_wheel_ships_the_assets_licence_and_extras(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(metadata).decode()
    assert "ipadgen/assets/materials.yaml" in names
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names)
    assert {n.split("/")[0] for n in names if not n.startswith("ipad_vad-")} == {"ipadgen", "ipad_detect"}
    assert "Name: ipad-vad" in meta and "License-Expression: MIT" in meta
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [r for r in requires if "==" in r.split(";")[0]], "ranges here, pins in constraints.txt"
    assert any(r.startswith("bpy") and 'extra == "gen"' in r and "3.11" in r for r in requires)
    assert any(r.startswith("torch") and 'extra == "detect"' in r for r in requires)
    assert not [r for r in requires if r.startswith(("bpy", "torch")) and "extra ==" not in r]


def test_the_installed_wheel_renders_a_frame(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    # The wheel only (no dependencies) with the pip running the tests ...
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel],
         tmp_path)
    # ... and its dependencies taken from the environment running the tests (bpy alone is 800 MB), as
    # --system-site-packages would. Those paths come after the venv's own: its ipadgen wins, and the
    # editable checkout's finder (a .pth file there) is not loaded from a path added this way.
    outer = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    (site / "_outer_environment.pth").write_text("\n".join(outer) + "\n")

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    where = _run([python, "-c", "import ipadgen, ipadgen.render.blender as b; print(ipadgen.__file__); "
                                "print(b.MATERIALS)"], cwd).split()
    assert all(Path(p).is_relative_to(site) for p in where), f"not the installed package: {where}"

    out = tmp_path / "out"
    _run([env_dir / "bin" / "ipadgen", "render", "--device", "lifter", "--anomalies", "stall", "--out", out,
          "--scene-name", "w", "--train-videos", "1", "--test-videos", "0", "--cycles", "1",
          "--resolution", "32", "--fps", "2", "--quiet"], cwd)
    frames = sorted((out / "w" / "training" / "frames" / "01").glob("*.jpg"))
    assert frames, "no frame rendered"
    with Image.open(frames[0]) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (32, 32, 3) and pixels.std() > 1
    record = json.loads((out / "w" / "scene.json").read_text())
    assert record["versions"]["ipad"] and record["versions"]["blender"]

    assert "ipad-detect" in _run([env_dir / "bin" / "ipad-detect", "--help"], cwd)

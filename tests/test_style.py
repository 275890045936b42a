"""The real-like style: deterministic post-processing that keeps masks true."""
import numpy as np
import pytest

from ipadgen.render.style import FrameFinisher
from ipadgen.spec import RenderSpec


def _frames(spec, seed=(0, 3, 1)):
    rng = np.random.default_rng(0)
    raws = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    finish = FrameFinisher(spec, seed)
    return raws, [finish.frame(r) for r in raws]


def test_synthetic_style_is_the_identity():
    raws, out = _frames(RenderSpec(resolution=32))
    for a, b in zip(raws, out):
        np.testing.assert_array_equal(a, b)


def test_real_style_is_deterministic_per_video_and_changes_pixels():
    spec = RenderSpec.real(resolution=32)
    raws, a = _frames(spec)
    _, b = _frames(spec)
    _, c = _frames(spec, seed=(0, 3, 2))
    for x, y, z, raw in zip(a, b, c, raws):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z), "another video, other sensor noise"
        assert not np.array_equal(x, raw)


def test_masks_follow_the_lens_distortion():
    spec = RenderSpec.real(resolution=64, sensor_noise=0.0, motion_blur=0.0)
    finish = FrameFinisher(spec, (0, 3, 1))
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[5:15, 5:15] = 255  # a bright square near the corner, where barrel distortion moves it
    mask = img[..., 0] > 0
    warped_img, warped_mask = finish.frame(img)[..., 0] > 127, finish.mask(mask)
    assert not np.array_equal(warped_mask, mask)
    assert (warped_img == warped_mask).mean() > 0.98


@pytest.mark.blender
def test_render_style_real_end_to_end(tmp_path):
    pytest.importorskip("bpy")
    from ipadgen.cli import main
    assert main(["render", "--device", "lifter", "--anomalies", "load_color", "--style", "real",
                 "--samples", "2", "--out", str(tmp_path), "--scene-name", "R", "--train-videos",
                 "0", "--test-videos", "1", "--cycles", "2", "--resolution", "32", "--fps", "1",
                 "--quiet"]) == 0
    import json
    record = json.loads((tmp_path / "R" / "scene.json").read_text())
    assert record["spec"]["render"]["style"] == "real"
    assert record["spec"]["render"]["engine"] == "cycles"
    labels = np.load(tmp_path / "R" / "test_label" / "001.npy")
    assert labels.any()

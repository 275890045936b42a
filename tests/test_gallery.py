"""The gallery renders every anomaly kind of a device beside its normal twin."""
import math

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("bpy")

from ipadgen.devices import get_device  # noqa: E402
from ipadgen.gallery import PAIRS_PER_ROW, write_gallery  # noqa: E402
from ipadgen.preview import TILE  # noqa: E402

pytestmark = pytest.mark.blender


def test_gallery_pairs_every_kind_with_its_twin(tmp_path):
    (path,) = write_gallery(tmp_path, ["lifter"], resolution=48)
    kinds = len(get_device("lifter").anomalies)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert sheet.shape[0] == math.ceil(kinds / PAIRS_PER_ROW) * TILE
    for k in range(kinds):  # caption bars: normal (black) then anomalous (red), pair by pair
        row, col = divmod(2 * k, 2 * PAIRS_PER_ROW)
        normal = sheet[row * TILE + 6, col * TILE + TILE - 3]  # right of the caption text
        anomalous = sheet[row * TILE + 6, (col + 2) * TILE - 3]
        assert normal[0] < 60 and anomalous[0] > 120, k
    assert "![lifter](lifter.png)" in (tmp_path / "index.md").read_text()

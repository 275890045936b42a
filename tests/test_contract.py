"""The on-disk contract is one module that both packages import, each without the other's stack."""
import subprocess
import sys

import numpy as np

from ipadgen import contract, writer
from ipadgen.contract import frame_name, label_name, label_path, release_labels_path, video_name


def test_both_packages_share_one_period_record():
    from ipad_detect import period_estimation
    assert period_estimation.PERIOD_DTYPE is writer.PERIOD_DTYPE is contract.PERIOD_DTYPE
    assert contract.PERIOD_DTYPE == np.dtype([("cycle", "<i4"), ("phase", "<f8")])


def test_names_follow_the_ipad_layout(tmp_path):
    assert video_name(1) == "01" and label_name(1) == label_name("01") == "001.npy"
    assert [frame_name(i, 10) for i in (0, 9)] == ["000", "009"]
    assert frame_name(7, 1001) == "0007"  # wider when the video needs it
    assert contract.FRAME_NAME.match(f"{frame_name(7, 1001)}{contract.FRAME_SUFFIX}")
    assert label_path(tmp_path / "S01", "02") == tmp_path / "S01" / "test_label" / "002.npy"
    assert release_labels_path(tmp_path / "S01") == tmp_path / "S01" / "frame_labels_S01.npy"


def _imports(modules: list[str]) -> set[str]:
    code = f"import sys; import {', '.join(modules)}; print(' '.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                              text=True).stdout.split())


def test_the_detector_reads_the_layout_without_bpy():
    loaded = _imports(["ipad_detect.data", "ipad_detect.period_estimation", "ipad_detect.ingest"])
    assert "ipadgen.contract" in loaded and "bpy" not in loaded


def test_the_generator_writes_the_layout_without_torch():
    loaded = _imports(["ipadgen.contract", "ipadgen.writer", "ipadgen.scene", "ipadgen.verify", "ipadgen.preview"])
    assert "torch" not in loaded

"""A lock or temporary whose process was killed is stale even while that process is a zombie.

A container's init may never reap a killed render worker, so its pid still answers `kill -0`:
the lock it held must still be taken over (CI once left a scene uncommitted that way)."""
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch.nn as nn

from ipad_detect.checkpoint import save_checkpoint
from ipad_detect.config import get_config
from ipadgen.writer import SceneWriter


@pytest.fixture
def zombie_pid():
    """The pid of a child killed and not yet waited for: a zombie until the fixture reaps it."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, left unreaped
    with open(f"/proc/{child.pid}/stat") as stat:
        assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    yield child.pid
    child.wait()


def test_a_lock_held_by_a_zombie_is_taken_over_and_a_live_one_is_not(tmp_path, zombie_pid):
    writer = SceneWriter(tmp_path, "S01", {"spec": {"name": "S01"}})
    locks = writer.stage / ".locks"
    locks.mkdir()
    (locks / "training-01.lock").write_text(f"{socket.gethostname()} {zombie_pid}")
    assert writer.lock_video("training", 1) is None
    assert (locks / "training-01.lock").read_text() == f"{socket.gethostname()} {os.getpid()}"
    (locks / "testing-01.lock").write_text(f"{socket.gethostname()} {os.getppid()}")  # runs
    assert str(os.getppid()) in writer.lock_video("testing", 1)


def test_a_checkpoint_temporary_of_a_zombie_is_removed(tmp_path, zombie_pid):
    stale = tmp_path / f".tmp-epoch-0002-{zombie_pid}"
    stale.mkdir(parents=True)
    live = tmp_path / f".tmp-epoch-0002-{os.getppid()}"  # another run saving now
    live.mkdir()
    save_checkpoint(tmp_path, nn.Linear(2, 2), "conae", get_config("tiny"), epoch=1)
    assert not stale.exists() and live.exists()

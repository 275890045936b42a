"""Two CPU processes train one model with DistributedDataParallel over gloo."""

import json
import socket

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from ipad_detect.config import get_config
from ipad_detect.models import build_model
from ipad_detect.train import TrainOptions, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, root: str, out: str, port: int) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    options = TrainOptions(kind="full", epochs=1, batch_size=1, lr=1e-3, max_clips=4, progress=False)
    result = train(root, ["S01"], get_config("tiny"), f"{out}/run", options)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"losses": result.epoch_losses}, f)


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    from conftest import write_scene

    write_scene(tmp_path / "data", "S01", num_frames=20, train_videos=1)
    mp.spawn(_worker, args=(str(tmp_path / "data"), str(tmp_path), _free_port()), nprocs=2, join=True)

    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0, msg=name)
    # each rank trained on its own half of the clips (different losses), and only rank 0 wrote
    losses = [json.loads((tmp_path / f"rank{r}.json").read_text())["losses"][0] for r in (0, 1)]
    assert losses[0] != losses[1]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["epoch-0001"]
    # and training moved the weights away from the seeded initialisation both ranks started from
    torch.manual_seed(0)
    untrained = build_model("full", get_config("tiny")).state_dict()
    assert any(not torch.equal(untrained[name], rank0[name]) for name in rank0)

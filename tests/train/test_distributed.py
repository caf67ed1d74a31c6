"""Two gloo processes with the same global batch follow the loss curve of one process.

The model is a plain nn.Module so that the spawned children import torch and probe.train only (no transformer_lens).
"""

import json
import os
import socket

import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from probe.train import TrainConfig, Trainer
from probe.train.batches import DictDataset


class PlainLM(nn.Module):
    def __init__(self, d_vocab: int = 11, d: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(d_vocab, d)
        self.out = nn.Linear(d, d_vocab)

    def forward(self, tokens: torch.Tensor, return_type: str = "loss") -> torch.Tensor:
        logits = self.out(self.embed(tokens))
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


def data() -> DictDataset:
    g = torch.Generator().manual_seed(0)
    return DictDataset(tokens=torch.randint(0, 11, (64, 12), generator=g))


def train_losses(out: str | None = None) -> list[float]:
    cfg = TrainConfig(steps=6, batch_size=16, lr=0.05, optimizer="adam", log_every=1, progress=False)
    trainer = Trainer(PlainLM(), data(), None, cfg)
    trainer.fit()
    if out is not None and trainer.dist.is_main:
        with open(out, "w") as f:
            json.dump({"losses": trainer.losses(), "world": trainer.dist.world,
                       "weight": trainer.model.out.weight.sum().item()}, f)
    return trainer.losses()


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from probe.train import distributed

    try:
        train_losses(out)
    finally:
        distributed.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    out = str(tmp_path / "ddp.json")
    # fork: the children inherit the imported modules (spawn would re-import torch in each, ~5 s on 2 cores)
    mp.start_processes(worker, args=(2, free_port(), out), nprocs=2, join=True, start_method="fork")
    ddp = json.loads(open(out).read())
    single = train_losses()
    assert ddp["world"] == 2 and len(ddp["losses"]) == 6
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(single), rtol=1e-4, atol=1e-5)
    assert abs(single[-1] - single[0]) > 0.05  # the curve moves, so agreement is not trivial

"""Training: `Trainer`, `TrainConfig`, optimizers and schedules, callbacks, DDP (see each module)."""

from probe.train.batches import DictDataset
from probe.train.callbacks import AttentionTrajectory, Callback, load_trajectory
from probe.train.early_stopping import EarlyStopping
from probe.train.trainer import NonFiniteLossError, TrainConfig, Trainer, select_device, train

__all__ = ["AttentionTrajectory", "Callback", "DictDataset", "EarlyStopping", "NonFiniteLossError", "TrainConfig",
           "Trainer", "load_trajectory", "select_device", "train"]

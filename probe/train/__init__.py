"""Training: `Trainer`, `TrainConfig`, optimizers and schedules, callbacks (`Recorder`), DDP (see each module)."""

from probe.train.batches import DictDataset
from probe.train.callbacks import Callback
from probe.train.early_stopping import EarlyStopping
from probe.train.recorder import Recorder
from probe.train.trainer import NonFiniteLossError, TrainConfig, Trainer, select_device, train

__all__ = ["Callback", "DictDataset", "EarlyStopping", "NonFiniteLossError", "Recorder", "TrainConfig", "Trainer",
           "select_device", "train"]

"""The shared training loop of PyTorch models: trainer, losses, callbacks, checkpoints.

    >>> from prodcat.training import Trainer, TrainingSettings
    >>> Trainer(TrainingSettings(epochs=5), quiet=True).settings.epochs
    5
"""

from prodcat.training.callbacks import Callback, ProgressBar, TensorBoardLogger
from prodcat.training.checkpoints import load_checkpoint, save_checkpoint
from prodcat.training.losses import FocalLoss, make_loss
from prodcat.training.trainer import (
    TRAINING_DEFAULTS,
    EncodedSplit,
    Trainer,
    TrainingSettings,
    TrainResult,
    TrainState,
    batch_order,
    lr_factor,
    predict_logits,
    resolve_device,
)

__all__ = [
    "TRAINING_DEFAULTS", "Callback", "EncodedSplit", "FocalLoss", "ProgressBar", "TensorBoardLogger", "TrainResult",
    "TrainState", "Trainer", "TrainingSettings", "batch_order", "load_checkpoint", "lr_factor", "make_loss",
    "predict_logits", "resolve_device", "save_checkpoint",
]

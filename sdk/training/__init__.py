"""Fine-tuning: `finetune(TrainConfig)` trains a (Q)LoRA adapter; `merge` folds it into the base."""
from sdk.training.config import TrainConfig
from sdk.training.finetune import TrainResult, finetune

__all__ = ["TrainConfig", "TrainResult", "finetune"]

"""tagger: TAG / Tagger (iterative amortized grouping, Greff et al., NIPS 2016) in PyTorch."""
from .config import Config, ModelConfig, TrainConfig, preset
from .errors import CheckpointError, ConfigError, DataError, TrainingError, UserError
from .model import Tagger, TaggerOutput

__version__ = "0.1.0"
__all__ = ["Config", "ModelConfig", "TrainConfig", "preset", "Tagger", "TaggerOutput", "load",
           "UserError", "ConfigError", "DataError", "CheckpointError", "TrainingError"]


def load(path, device="cpu") -> Tagger:
    """Load a trained :class:`Tagger` in eval mode from a run directory or checkpoint file."""
    from .checkpoint import load_model

    return load_model(path, device=device)

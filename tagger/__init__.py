"""tagger: TAG / Tagger (iterative amortized grouping, Greff et al., NIPS 2016) in PyTorch."""
import os
import sys

# Whether libgomp was loaded (with torch) before this package could set GOMP_SPINCOUNT: then its
# threads spin 300,000 times at each barrier, and tagger.metrics runs on one thread (tagger/threads.py).
OPENMP_SPINS = "torch" in sys.modules and "GOMP_SPINCOUNT" not in os.environ
if "torch" not in sys.modules:  # read once, when torch loads its OpenMP runtime
    # Threads waiting at an OpenMP barrier spin 300,000 times before sleeping (libgomp's default).
    # On a CPU shared with another busy process that turned a 2-thread training step 10-50x slower;
    # 1,000 spins keep the slowdown near the share of cores lost (~2x beside one busy process) for
    # ~10 % on an idle machine (docs/performance.md, "Sharing the CPU"). Set it yourself to override.
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from .config import Config, ModelConfig, TrainConfig
from .presets import preset
from .errors import CheckpointError, ConfigError, DataError, TrainingError, UserError
from .model import Tagger, TaggerOutput
from .pretrained import load_pretrained, pretrained_names

__version__ = "0.1.0"
__all__ = ["Config", "ModelConfig", "TrainConfig", "preset", "Tagger", "TaggerOutput", "train", "load",
           "load_pretrained", "pretrained_names",
           "UserError", "ConfigError", "DataError", "CheckpointError", "TrainingError"]


def load(path, device="cpu") -> Tagger:
    """Load a trained :class:`Tagger` in eval mode from a run directory or checkpoint file."""
    from .checkpoint import load_model

    return load_model(path, device=device)


def train(config, train=None, valid=None, run_dir=None, device="cpu", **options) -> Tagger:
    """Train a :class:`Tagger` and return it; see :func:`tagger.training.run.train` for every option."""
    from .training.run import train as train_model

    return train_model(config, train, valid, run_dir, device, **options)

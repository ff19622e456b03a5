"""The reference's second TextureMNIST stage: pretrained grouping, new top layers, 1,000 labels.

Every training step takes one unlabelled batch (an epoch is one pass over all training
images) and one labelled batch from a small set that is reshuffled and cycled (the
reference's ``SemiDataStream``). The cost is the denoising cost of the unlabelled batch plus
``class_cost`` times the classification cost of the labelled batch at the last iteration;
both batches are corrupted and run as separate forward passes (separate batch statistics),
as in the reference graph.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import read_checkpoint
from ..classify import labeled_subset
from ..config import Config
from ..datasets.common import Split
from ..errors import CheckpointError, ConfigError


def choose_labeled(split: Split, count: int, seed: int, limit: int = 0) -> np.ndarray:
    """Indices of the labelled images of a training ``split`` (:func:`~tagger.classify.labeled_subset`),
    chosen by the first label as the original data stored it (for two digits not our depth order).

    Args:
        count: labelled examples wanted (0 = all); seed: the run's seed.
        limit: consider only the first ``limit`` examples (0 = all).
    """
    stored = split.labels if split.original_labels is None else split.original_labels
    try:
        return labeled_subset(stored[:limit or len(split), 0], count, seed)
    except ValueError as error:
        raise ConfigError(str(error)) from None


class LabeledStream:
    """The labelled examples of the training ``split``, on the device, drawn in cycled,
    reshuffled batches.

    Attributes:
        x: ``(M, D)`` labelled inputs; ``labels``: ``(M, L)`` int64 labels (depth order).
    """

    def __init__(self, config: Config, split: Split, device="cpu"):
        train = config.train
        indices = choose_labeled(split, train.labeled, train.seed, train.train_examples)
        if len(indices) < train.batch_size:
            raise ConfigError(f"--labeled {len(indices)} is smaller than --batch-size {train.batch_size}")
        self.x = torch.as_tensor(split.features[indices]).to(device)
        self.labels = torch.as_tensor(split.labels[indices].astype(np.int64)).to(device)
        self.batch_size = train.batch_size
        self.order = torch.Generator().manual_seed(train.seed + 2)
        self.cycle_start = self.order.get_state()  # RNG state that draws the current permutation
        self.permutation = torch.randperm(len(self.x), generator=self.order)
        self.position = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``(x, labels)`` batch; a new permutation once the current one is used up."""
        if self.position + self.batch_size > len(self.permutation):
            self.cycle_start = self.order.get_state()
            self.permutation = torch.randperm(len(self.x), generator=self.order)
            self.position = 0
        chosen = self.permutation[self.position:self.position + self.batch_size].to(self.x.device)
        self.position += self.batch_size
        return self.x[chosen], self.labels[chosen]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The RNG state that drew the current permutation, for the checkpoint (with
        :attr:`position` in the training state, an exact resume)."""
        return {"rng.labeled_cycle": self.cycle_start}

    def restore(self, position: int, tensors: dict[str, torch.Tensor]) -> None:
        if "rng.labeled_cycle" not in tensors:
            raise CheckpointError("the checkpoint has no labelled-stream state (not a semi-supervised run)")
        self.order.set_state(tensors["rng.labeled_cycle"])
        self.cycle_start = self.order.get_state()
        self.permutation = torch.randperm(len(self.x), generator=self.order)
        self.position = int(position)


def init_source(value: str | Path) -> Path:
    """``--init``'s folder: a run directory, or the name of a shipped model (``tagger.pretrained_names()``)."""
    from ..pretrained import pretrained_names, pretrained_path

    if not Path(value).exists() and str(value) in pretrained_names():
        return pretrained_path(str(value))
    return Path(value)


def initialise_from(model: torch.nn.Module, source: str | Path, keep_v: bool = False) -> tuple[list[str], list[str]]:
    """Copy a run's weights into ``model`` wherever name and shape match (the reference's
    ``--continue``: the pretrained grouping keeps its weights, the deeper top layers start fresh).

    Args:
        keep_v: keep the model's own learned variance (an explicit ``--v-init``) instead of
            the pretrained one.

    Returns:
        ``(loaded, fresh)`` parameter names.
    """
    _, _, weights, _ = read_checkpoint(init_source(source))
    own = model.state_dict()
    loaded = [name for name, value in own.items()
              if name in weights and tuple(weights[name].shape) == tuple(value.shape)
              and not (keep_v and name == "likelihood.v_raw")]
    if "input_weight" not in loaded:  # the TAG input layer is what a pretrained grouping hands on
        raise CheckpointError(f"{source}: its input layer does not fit this model (trained on other data or "
                              f"another input size); --init needs a run on the same data")
    with torch.no_grad():
        for name in loaded:
            own[name].copy_(weights[name])
    return loaded, [name for name in own if name not in loaded]

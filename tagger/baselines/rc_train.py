"""Training and evaluation of Reconstruction Clustering on Shapes (``tagger rc``).

A run directory holds ``config.json``, ``metrics.csv`` (+ ``tb/``: the DAE's training and
validation loss per epoch), ``dae.safetensors`` (the best weights), ``result.json`` (test AMI
per RC iteration) and ``groupings.png``. ``tagger rc --seeds 1-5`` runs one directory per seed
and writes ``summary.json`` (mean and standard deviation over seeds).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import datasets, metrics
from ..checkpoint import save_weights
from ..errors import TrainingError
from ..evaluate import write_json
from ..training.runlog import RunLog
from .reconstruction_clustering import (TRAIN_SPLITS, DenoisingAutoencoder, RCConfig, cluster, denoising_loss,
                                        fixed_batches, salt_and_pepper)

FIGURE_ITERATIONS = (1, 2, 3, 5, 10)


def _mean_loss(model: DenoisingAutoencoder, data: torch.Tensor, batches, noise: float,
               generator: torch.Generator) -> float:
    with torch.no_grad():
        losses = [denoising_loss(model, data[index], salt_and_pepper(data[index], noise, generator)).item()
                  for index in batches]
    return float(np.mean(losses))


def train_denoiser(config: RCConfig, features: np.ndarray, device: torch.device, log=None,
                   progress: bool = True) -> tuple[DenoisingAutoencoder, list[dict]]:
    """Train the DAE on the first 90 % of ``features``, early-stopped on the last 10 %.

    Args:
        config: the run's settings (hidden layer, noise, SGD step, patience, seed).
        features: ``(N, D)`` binary images.
        device: where to train.
        log: called with one row per epoch (``epoch``, ``train_loss``, ``valid_loss``: nats per image).
        progress: show a tqdm bar over epochs.

    Returns:
        The model with the weights of its best validation epoch, and the per-epoch rows.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator(device).manual_seed(config.seed)
    order = np.random.RandomState(config.seed)
    data = torch.as_tensor(features, dtype=torch.float32, device=device)  # (N, D)
    n_train = int(0.9 * len(data))
    train, valid = data[:n_train], data[n_train:]
    batches, valid_batches = fixed_batches(n_train, config.batch_size), fixed_batches(len(valid), config.batch_size)
    model = DenoisingAutoencoder(data.shape[1], config.hidden, config.activation).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.lr)
    best_loss, best_epoch, best_state, history = math.inf, 0, None, []
    bar = tqdm(range(1, config.max_epochs + 1), desc="RC denoiser", unit="epoch", disable=not progress)
    for epoch in bar:
        losses = []
        for i in order.permutation(len(batches)):
            clean = train[batches[i]]  # (batch, D)
            loss = denoising_loss(model, clean, salt_and_pepper(clean, config.noise, generator))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.detach())
        row = {"epoch": epoch, "train_loss": float(torch.stack(losses).mean()),
               "valid_loss": _mean_loss(model, valid, valid_batches, config.noise, generator)}
        if not math.isfinite(row["train_loss"]):
            raise TrainingError(f"RC denoiser: loss became {row['train_loss']} in epoch {epoch}; lower --lr")
        history.append(row)
        if log is not None:
            log(row)
        bar.set_postfix(valid=f"{row['valid_loss']:.2f}", best=best_epoch)
        if row["valid_loss"] < best_loss:
            best_loss, best_epoch = row["valid_loss"], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    return model.eval(), history


def evaluate_rc(model: DenoisingAutoencoder, split: datasets.Split, config: RCConfig, device: torch.device,
                batch_size: int = 1000) -> dict:
    """RC on a split: mean AMI after each iteration (index 0 = the random start).

    Returns:
        ``ami`` (list of T + 1 means), ``ami_std`` and ``ami_sem`` (over examples, last
        iteration), ``examples``.
    """
    count = config.test_examples or len(split)
    generator = torch.Generator(device).manual_seed(config.seed)
    scores = []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        x = torch.as_tensor(split.features[start:stop], device=device)  # (B, D)
        masks, _ = cluster(model, x, config.groups, config.iterations, config.e_step, generator)  # (T+1, B, K, D)
        objects = torch.as_tensor(split.objects[start:stop], device=device)  # (B, D)
        scores.append(torch.stack([metrics.ami(objects, masks[t]) for t in range(len(masks))], 1).cpu())  # (B, T+1)
    scores = torch.cat(scores)  # (N, T+1)
    last = scores[:, -1]
    return {"ami": scores.mean(0).tolist(), "ami_std": float(last.std()),
            "ami_sem": float(last.std() / math.sqrt(len(last))), "examples": count}


def write_figure(model: DenoisingAutoencoder, split: datasets.Split, config: RCConfig, device: torch.device,
                 path: Path, examples: int = 4) -> Path:
    """Groupings of the first test images at a few RC iterations, like ``tagger show``."""
    from ..visualize import grouping_figure

    x = torch.as_tensor(split.features[:examples], device=device)  # (B, D)
    generator = torch.Generator(device).manual_seed(config.seed)
    masks, reconstructions = cluster(model, x, config.groups, config.iterations, config.e_step, generator)
    shown = [t for t in FIGURE_ITERATIONS if t <= config.iterations]
    return grouping_figure(x, torch.as_tensor(split.objects[:examples]), masks[shown],
                           reconstructions[[t - 1 for t in shown]], split.image_shape, path,
                           title=f"Reconstruction Clustering, DAE trained on '{config.train_set}', K={config.groups}",
                           iteration_names=[f"iter {t}" for t in shown])


def run_rc(config: RCConfig, run_dir: Path, device: torch.device, data_dir=None, progress: bool = True) -> dict:
    """Train the DAE, run RC on the test split, write the run directory; returns ``result.json``'s content."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(config.to_dict(), run_dir / "config.json")
    started = time.time()
    training = datasets.shapes(TRAIN_SPLITS[config.train_set], data_dir=data_dir)
    with RunLog(run_dir, echo=False) as log:
        model, history = train_denoiser(config, training.features, device, log, progress)
    save_weights(model, run_dir / "dae.safetensors", {"format": "tagger-rc-dae"})
    test = datasets.shapes("test", data_dir=data_dir)
    result = evaluate_rc(model, test, config, device)
    best = min(history, key=lambda row: row["valid_loss"])
    result.update(epochs_run=len(history), best_epoch=best["epoch"], best_valid_loss=best["valid_loss"],
                  seconds=round(time.time() - started, 1), device=str(device), torch=torch.__version__)
    write_figure(model, test, config, device, run_dir / "groupings.png")
    write_json(result, run_dir / "result.json")
    return result


def summarise(results: dict[int, dict]) -> dict:
    """Mean and standard deviation over seeds of the last-iteration AMI (and the per-iteration means)."""
    per_iteration = np.array([result["ami"] for result in results.values()])  # (seeds, T+1)
    finals = per_iteration[:, -1]  # (seeds,)
    return {"seeds": sorted(results), "ami_mean": float(finals.mean()),
            "ami_std": float(finals.std(ddof=1)) if len(finals) > 1 else 0.0,
            "ami_per_iteration": per_iteration.mean(0).tolist(), "per_seed": {str(s): r["ami"][-1] for s, r in results.items()}}

"""The training loop: Adam on the denoising cost averaged over iterations, validation each
epoch, CSV + TensorBoard logs, atomic checkpoints and exact resume.

One step runs through three files: :meth:`Trainer.train_epoch` here calls the step function
from :mod:`tagger.training.steps`, which runs :class:`tagger.model.Tagger`.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import datasets
from ..checkpoint import load_weights, read_checkpoint, save_checkpoint
from ..config import USER, Config
from ..datasets import Split
from ..errors import CheckpointError, ConfigError, TrainingError
from ..evaluate import evaluate
from ..files import write_text_atomically
from ..model import Tagger
from .device import resolve_device
from .distributed import Ranks
from .interrupts import Interrupted, StopRequests
from .output import progress_stream
from .labeled import LabeledStream, initialise_from
from .runlog import RunLog
from .state import TrainState, optimizer_tensors, restore_optimizer, restore_rng, rng_tensors
from .steps import learning_rate, make_step

FIGURE_SECONDS = 30.0  # TensorBoard's grouping figure at most this often (it costs ~0.5 s of CPU)


def load_splits(config: Config, data_dir=None, progress: bool = True):
    """The training and validation :class:`~tagger.datasets.common.Split` s of the config's dataset
    (for your own images, the files the config names, refused if they changed since)."""
    train = config.train
    if train.dataset == USER:
        return datasets.user_splits(train, data_dir, progress)
    train_split = datasets.load(train.dataset, "train", data_dir, **train.data_kwargs())
    valid_split = datasets.load(train.dataset, "valid", data_dir, **train.data_kwargs())
    return train_split, valid_split


def check_data(config: Config, train_split: Split, valid_split: Split) -> int:
    """The training examples a run of ``config`` uses; a one-line :class:`ConfigError` where the
    data does not fit the model or no step would run."""
    train = config.train
    for split in (train_split, valid_split):
        if split.input_size != config.model.input_size:
            raise ConfigError(f"the model's input_size {config.model.input_size} does not match the data "
                              f"({split.name}: {split.input_size} elements per example)")
    if train.train_examples > len(train_split):
        raise ConfigError(f"--train-examples {train.train_examples} exceeds the training split's "
                          f"{len(train_split)} examples")
    count = train.train_examples or len(train_split)
    if count // train.batch_size == 0:  # the last partial batch is dropped: no step would run
        raise ConfigError(f"--batch-size {train.batch_size} is larger than the {count} training examples: "
                          "an epoch would run no step (use a smaller --batch-size or more --train-examples)")
    return count


class Trainer:
    """Owns model, step strategy, data, data-order RNG, training state and the run directory.

    Built by :func:`tagger.train` (:mod:`tagger.training.run`), which validates the config and
    applies the process-wide settings (seed, deterministic algorithms, TF32) first.

    Args:
        compile: the step strategy (:data:`tagger.training.steps.MODES`; ``off`` = eager).
        ranks: this process's place under ``torchrun`` (default: not distributed).
    """

    def __init__(self, config: Config, run_dir: Path, train: Split, valid: Split, device: torch.device | str = "cpu",
                 progress: bool = True, compile: str = "off", ranks: Ranks = Ranks()):
        self.config = config
        self.run_dir = Path(run_dir)
        self.ranks = ranks
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.progress = progress and ranks.main
        self.model = Tagger(config.model).to(self.device)
        self.order = torch.Generator().manual_seed(config.train.seed + 1)  # data order (CPU)
        self.load_data(train, valid)
        self.state = TrainState()
        self.saved_at = (-1, time.time())  # (step, wall time) of the last checkpoint
        self.cost_sum = None  # (): the epoch's training cost so far, on the device (train_epoch)
        self.figure_at = 0.0  # wall time of the last TensorBoard grouping figure
        self.epoch_order_state = self.order.get_state()
        self.step = make_step(compile, self.model, config, self.device, ranks, self.labeled)

    def load_data(self, train_split: Split, valid_split: Split) -> None:
        """The training inputs, validation inputs, objects (and labels) on the device, once."""
        train = self.config.train
        count = check_data(self.config, train_split, valid_split)
        valid_count = train.valid_examples or len(valid_split)
        on_device = lambda array: torch.as_tensor(array).to(self.device)  # noqa: E731
        self.train_x = on_device(train_split.features[:count])  # (N, D)
        self.valid_x = on_device(valid_split.features[:valid_count])
        self.valid_objects = on_device(valid_split.objects[:valid_count].astype("int64"))
        self.image_shape = valid_split.image_shape  # for the TensorBoard grouping figure
        self.labeled, self.valid_labels = None, None  # semi-supervised runs (class_cost > 0)
        if train.class_cost > 0:
            self.labeled = LabeledStream(self.config, train_split, self.device)
            self.valid_labels = on_device(valid_split.labels[:valid_count].astype("int64"))

    # -- checkpoints --------------------------------------------------------------------
    def save(self) -> None:
        """Checkpoint (rank 0 writes; every rank waits for it)."""
        if self.cost_sum is not None:
            self.state.cost_sum = float(self.cost_sum)
        tensors = rng_tensors(self.device, self.epoch_order_state)
        tensors.update(optimizer_tensors(self.model, self.step.optimizer))
        if self.labeled is not None:
            self.state.labeled_position = self.labeled.position
            tensors.update(self.labeled.tensors())
        if self.ranks.main:
            save_checkpoint(self.run_dir, self.config, self.model, self.state.to_dict(), tensors)
        self.ranks.barrier()
        self.saved_at = (self.state.step, time.time())

    def restore(self) -> None:
        """Continue from ``run_dir``'s checkpoint: weights, Adam, RNG, position."""
        _, state, weights, tensors = read_checkpoint(self.run_dir)
        if not {"rng.torch", "rng.order_epoch_start"} <= set(tensors):
            raise CheckpointError(f"{self.run_dir}: the checkpoint holds weights but no training state, so it "
                                  f"cannot be resumed; start a new run from its weights with --init {self.run_dir}")
        load_weights(self.model, weights, self.run_dir)
        restore_optimizer(self.model, self.step.optimizer, tensors, self.step.capturable)
        self.epoch_order_state = restore_rng(self.device, tensors)
        try:
            self.state = TrainState.from_dict(state)
        except ValueError as error:
            raise CheckpointError(f"{self.run_dir}: {error}") from None
        if self.labeled is not None:
            self.labeled.restore(self.state.labeled_position, tensors)
        self.saved_at = (self.state.step, time.time())

    # -- steps ----------------------------------------------------------------------------
    def epoch_batches(self):
        """Yield ``(position, indices)`` for the rest of the current epoch."""
        self.order.set_state(self.epoch_order_state)
        permutation = torch.randperm(self.train_x.shape[0], generator=self.order)
        size = self.config.train.batch_size
        steps = self.train_x.shape[0] // size  # drop the last partial batch (fixed shapes)
        for position in range(self.state.position, steps):
            yield position, permutation[position * size:(position + 1) * size].to(self.device)

    def train_epoch(self, deadline: float, stop: StopRequests = StopRequests()) -> bool:
        """Run the rest of one epoch; False if stopped early by the time limit or a signal."""
        train, state = self.config.train, self.state
        steps = self.train_x.shape[0] // train.batch_size
        bar = tqdm(total=steps, initial=state.position, disable=not self.progress, file=progress_stream(),
                   mininterval=0.1 if sys.stderr.isatty() else 30.0,
                   desc=f"epoch {state.epoch + 1}/{train.epochs}", leave=False)
        started, running = time.time(), []
        # the epoch's cost summed step by step in float64 on the device (no host sync): the same
        # sum in the same order whether or not the epoch is interrupted, checkpointed and resumed
        self.cost_sum = torch.tensor(state.cost_sum, dtype=torch.float64, device=self.device)
        for position, indices in self.epoch_batches():
            if train.lr_decays:  # a function of the step alone, so a resumed run follows the same schedule
                self.step.set_lr(learning_rate(train.lr, train.lr_decay_from, state.step, steps * train.epochs))
            running.append(self.step.fn(self.train_x[indices]))
            self.cost_sum += running[-1].double()
            state.step += 1
            state.cost_steps += 1
            state.position = position + 1
            bar.update(1)
            synced = len(running) == 20 or position + 1 == steps
            if synced:  # one host sync per 20 steps
                self.check_loss(self.ranks.mean(torch.stack(running).mean()).item(), bar)
                running = []
            if train.checkpoint_every and state.step % train.checkpoint_every == 0:
                state.elapsed += time.time() - started
                started = time.time()
                self.save()
            if self.stop_code(deadline, stop, synced):
                break
        bar.close()
        state.elapsed += time.time() - started
        return state.position == steps

    def stop_code(self, deadline: float, stop: StopRequests, synced: bool = True) -> int:
        """0 = go on, 1 = the time limit, 2 = a signal. Under torchrun every rank must stop after
        the same step (a rank that stops alone leaves the others waiting in a collective), so
        the ranks agree at the loss sync points, and a signal that reached one rank stops all."""
        wanted = 2 if stop.requested else 1 if time.time() > deadline else 0
        if self.ranks.world == 1:
            return wanted
        if not synced:
            return 0
        agreed = self.ranks.maximum(wanted, self.device)
        if agreed == 2 and stop.requested is None:
            stop.requested = "a signal to another rank"
        return agreed

    def check_loss(self, value: float, bar) -> None:
        if not math.isfinite(value):
            kept = (f"the last good checkpoint (step {self.saved_at[0]}) is kept in {self.run_dir}"
                    if self.saved_at[0] >= 0 else "no checkpoint was written")
            raise TrainingError(f"loss became {value} at step {self.state.step}; stopped, {kept}")
        self.state.last_loss = value
        bar.set_postfix(cost=f"{value:.4f}")

    # -- epochs ---------------------------------------------------------------------------
    def validate(self) -> dict:
        train = self.config.train
        result = evaluate(self.model, self.valid_x, self.valid_objects, iterations=train.eval_iterations,
                          batch_size=train.eval_batch_size, seed=train.seed, labels=self.valid_labels)
        if not bool(self.valid_objects.any()):  # your images without objects: the cost alone means anything
            result["ami"] = result["ari"] = [math.nan] * len(result["ami"])
        return result

    def end_epoch(self, log) -> None:
        result, state = self.validate(), self.state
        state.cost_sum = float(self.ranks.mean(self.cost_sum))
        row = {"epoch": state.epoch + 1, "step": state.step, "elapsed_s": round(state.elapsed, 2),
               "train_cost": state.cost_sum / max(state.cost_steps, 1)}
        for index, (cost, score, ari) in enumerate(zip(result["denoising_cost"], result["ami"], result["ari"]), start=1):
            row[f"valid_cost_{index}"], row[f"valid_ami_{index}"], row[f"valid_ari_{index}"] = cost, score, ari
        for index, error in enumerate(result.get("class_error", []), start=1):
            row[f"valid_class_error_{index}"] = error
        if hasattr(self.model.likelihood, "v"):  # continuous data: the learned variance
            row["v"] = float(self.model.likelihood.v.detach())
        log(row)
        self.log_groupings(log)
        state.history.append(row)
        state.cost_sum, state.cost_steps = 0.0, 0
        self.cost_sum = None
        state.epoch += 1
        state.position = 0
        self.epoch_order_state = self.order.get_state()
        minutes = self.config.train.checkpoint_minutes
        if state.epoch >= self.config.train.epochs or time.time() - self.saved_at[1] >= minutes * 60:
            self.save()

    @torch.no_grad()
    def log_groupings(self, log, shown: int = 4) -> None:
        """TensorBoard: the grouping figure of the first ``shown`` validation examples, once per
        epoch, so a run can be watched live. Only where TensorBoard is written (rank 0); it runs
        one evaluation batch (a BatchNorm model normalises over its batch, as in validation),
        ~1/100 of a validation pass on the full split."""
        if getattr(log, "writer", None) is None or time.time() - self.figure_at < FIGURE_SECONDS:
            return
        self.figure_at = time.time()
        import io

        from ..visualize import grouping_figure

        train = self.config.train
        was_training = self.model.training
        self.model.eval()
        x = self.valid_x[:train.eval_batch_size]
        generator = torch.Generator(device=self.device).manual_seed(train.seed)
        out = self.model.infer(x, iterations=train.eval_iterations, generator=generator)
        self.model.train(was_training)
        png = io.BytesIO()
        grouping_figure(x[:shown], self.valid_objects[:shown], out.masks[:, :shown], out.reconstructions[:, :shown],
                        self.image_shape, png, title=f"epoch {self.state.epoch + 1}")
        log.image("groupings/valid", png, self.state.epoch + 1)

    def initialise(self) -> None:
        """``--init RUN``: start from another run's weights where names and shapes match."""
        source = self.config.train.init_from
        loaded, fresh = initialise_from(self.model, source, keep_v=self.config.model.v_init is not None)
        if self.ranks.main:
            rest = f"{len(fresh)} start fresh: {', '.join(fresh[:6])}{' ...' if len(fresh) > 6 else ''}" \
                if fresh else "none start fresh"
            print(f"initialised {len(loaded)} weights from {source}; {rest}")

    def run(self, resume: bool = False) -> dict:
        """Train to ``epochs`` (or ``max_minutes``); returns the last validation row."""
        if resume:
            self.restore()
        elif self.config.train.init_from:
            self.initialise()
        if self.ranks.main:
            write_text_atomically(self.run_dir / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
        train = self.config.train
        deadline = time.time() + (train.max_minutes * 60 if train.max_minutes else float("inf"))
        with RunLog(self.run_dir, self.state.history, enabled=self.ranks.main) as log, StopRequests() as stop:
            while self.state.epoch < train.epochs:
                if not self.train_epoch(deadline, stop):
                    self.save()
                    break
                self.end_epoch(log)
                if self.stop_code(float("inf"), stop) == 2:
                    break
            if self.saved_at[0] != self.state.step:  # --checkpoint-minutes skipped the last epoch's save
                self.save()
        if stop.requested:
            raise Interrupted(f"{stop.requested}: checkpoint written at step {self.state.step} (epoch "
                              f"{self.state.epoch + 1}); --resume {self.run_dir} continues", stop.exit_code)
        return self.state.history[-1] if self.state.history else {}

    @property
    def finished(self) -> bool:
        """Whether the run has trained all its epochs (not stopped by a time limit)."""
        return self.state.epoch >= self.config.train.epochs

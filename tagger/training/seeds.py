"""Several seeds trained together in one process as one stacked model (``tagger train --seeds 10-29``).

The paper's Table 1 is a median over 20 seeds, and a seed is a whole training run whose small step
does not fill the hardware. Here the S runs step together: one :class:`~tagger.training.trainer.Trainer`
per seed, built exactly as ``tagger train --seed s`` builds it (``torch.manual_seed(s)``, then the
model from the global RNG; its data order from ``Generator().manual_seed(s + 1)``), owns that seed's
run directory ``RUN/seedS/``, data order, state, log, validation and checkpoints. Only the step is
shared: the members' weights are stacked (``torch.func.stack_module_state``), the objective
(:class:`~tagger.training.steps.LossOf`, so ``bf16`` works) runs for all members at once under
``torch.vmap`` of ``torch.func.functional_call``, the summed loss is differentiated (no gradient
mixes members) and one Adam steps the stacked weights (Adam is element-wise, so it is S Adams).
Normalisation statistics stay per member (each member's own batch, under vmap).

Random numbers: a single run draws corruption then mask logits from the *global* RNG after model
init. Each member has a ``torch.Generator`` holding exactly that state (captured after its model was
built, or after its checkpoint restored it) and draws with ``model.draw(..., generator=...)``, in
the single run's order, so a member sees the numbers its single run would. Before a member is
checkpointed or validated its weights, Adam moments and generator state are copied into its
Trainer (generator -> global RNG), so every ``RUN/seedS`` is an ordinary run: ``tagger eval``,
``show``, ``tagger.load`` and ``--resume RUN/seedS`` work on it alone. The group resumes with
``--resume RUN`` (``RUN/seeds.json`` names the seeds). What is not bitwise the single run is the
batched arithmetic (bmm sums in another order): 1e-9 after one fp32 step, which training on
Shapes amplifies ~1e4-1e5x where the groups break symmetry (fp32: 1e-4 after 60 steps, 2e-2 after
100; float64: 1e-8 after 100), as any change of summation order (e.g. thread count) would
(tests/test_seed_parallel.py).

Refused in one line: ``--compile graph/fused`` (CUDA graphs of a vmapped step are untested),
torchrun, and semi-supervised runs (``--class-cost``).
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import statistics
import time
from pathlib import Path

import torch
from torch.func import functional_call, stack_module_state

from ..config import Config
from ..errors import ConfigError
from ..evaluate import format_table, median_over_runs
from ..files import write_text_atomically
from ..model import Draws
from .interrupts import Interrupted, StopRequests
from .runlog import RunLog
from .steps import LossOf, learning_rate

GROUP_FILE = "seeds.json"  # RUN/seeds.json: the seeds of a group run (what --resume RUN reads)


def parse_seeds(text: str) -> list[int]:
    """``"10-29"`` or ``"1,2,3"`` -> seeds; a one-line :class:`ConfigError` for anything else."""
    try:
        if "-" in text.strip().lstrip("-") and "," not in text:
            first, last = (int(part) for part in text.split("-"))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must look like 10-29 or 1,2,3 (distinct seeds >= 0, first <= last), got {text!r}")
    return seeds


def is_group(run_dir) -> bool:
    return run_dir is not None and (Path(run_dir) / GROUP_FILE).is_file()


def group_seeds(run_dir) -> list[int]:
    return json.loads((Path(run_dir) / GROUP_FILE).read_text())["seeds"]


class SeedGroup:
    """S :class:`Trainer` s (one per seed) stepped together by one vmapped step and one Adam."""

    def __init__(self, configs: list[Config], run_dir: Path, train, valid, device: torch.device,
                 compile: str = "off", progress: bool = True):
        from .device import resolve_compile, resolve_precision
        from .trainer import Trainer

        first = configs[0]
        if first.train.class_cost > 0:
            raise ConfigError("--seeds does not train semi-supervised runs (--class-cost); train each seed alone")
        mode = resolve_compile(compile, device)
        if mode not in ("off", "inductor"):
            raise ConfigError(f"--compile {mode} does not work with --seeds (use off, inductor or auto)")
        self.run_dir, self.device, self.progress, self.mode = Path(run_dir), device, progress, mode
        self.precision = resolve_precision(first.train.precision, device)
        self.members, self.generators = [], []
        self.cost_sums = None  # (S,) float64: each member's epoch cost so far (train_epoch)
        for config in configs:  # each exactly as a single run builds it
            torch.manual_seed(config.train.seed)
            member = Trainer(config, self.run_dir / f"seed{config.train.seed}", train, valid, device, progress=False)
            if self.members:  # one copy of the data for all members
                for name in ("train_x", "valid_x", "valid_objects"):
                    setattr(member, name, getattr(self.members[0], name))
            self.members.append(member)
            self.generators.append(self._generator(config.train.seed))
        self.config = first

    # -- the members' random numbers ------------------------------------------------------
    def _generator(self, seed: int) -> torch.Generator:
        """The single run's global RNG as it stands now (after model init or restore)."""
        generator = torch.Generator(device=self.device)
        if self.device.type == "cuda":
            generator.set_state(torch.cuda.get_rng_state(self.device))  # the model was built on the CPU
        else:
            generator.set_state(torch.get_rng_state())
        return generator

    def _to_global(self, index: int) -> None:
        """Member ``index``'s generator -> the global RNG (which its checkpoint stores)."""
        state = self.generators[index].get_state()
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state, self.device)
        else:
            torch.set_rng_state(state)

    # -- stacking -------------------------------------------------------------------------
    def stack(self) -> None:
        """The members' weights and Adam moments -> the stacked weights and one Adam."""
        self.params, self.buffers = stack_module_state([m.model for m in self.members])
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.config.train.lr)
        for name, stacked in self.params.items():
            states = [m.step.optimizer.state.get(dict(m.model.named_parameters())[name]) for m in self.members]
            if all(states):
                self.optimizer.state[stacked] = {"step": states[0]["step"].clone(), **{
                    key: torch.stack([s[key] for s in states]) for key in ("exp_avg", "exp_avg_sq")}}
        base = copy.deepcopy(self.members[0].model).to("meta")
        loss_of = LossOf(base, self.precision)

        def member_loss(params, buffers, x, corruption, logits):
            state = {f"model.{k}": v for k, v in (params | buffers).items()}
            return functional_call(loss_of, state, (x, Draws(corruption, logits)))

        losses = torch.vmap(member_loss, randomness="error")
        self.losses = torch.compile(losses) if self.mode == "inductor" else losses

    @torch.no_grad()
    def _unstack(self, index: int) -> None:
        """Member ``index``'s weights, Adam moments and RNG into its Trainer (and the global RNG)."""
        member = self.members[index]
        for name, value in list(member.model.named_parameters()) + list(member.model.named_buffers()):
            value.copy_((self.params | self.buffers)[name][index])
        for name, param in member.model.named_parameters():
            state = self.optimizer.state.get(self.params[name])
            if state:
                member.step.optimizer.state[param] = {"step": state["step"].clone(), "exp_avg": state["exp_avg"][index].clone(),
                                                      "exp_avg_sq": state["exp_avg_sq"][index].clone()}
        self._to_global(index)

    # -- training -------------------------------------------------------------------------
    def step(self, batches: list[torch.Tensor]) -> torch.Tensor:
        """One Adam step of every member on its batch; returns the (S,) losses (no host sync)."""
        groups = self.config.model.groups
        draws = [m.model.draw(x.shape[0], groups, x.device, x.dtype, generator=g)
                 for m, x, g in zip(self.members, batches, self.generators)]
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.losses(self.params, self.buffers, torch.stack(batches),
                             torch.stack([d.corruption for d in draws]), torch.stack([d.mask_logits for d in draws]))
        losses.sum().backward()
        self.optimizer.step()
        return losses.detach()

    def save(self) -> None:
        for index, member in enumerate(self.members):
            self.unstack(index)
            member.save()

    def unstack(self, index: int) -> None:
        """Member ``index``'s weights, Adam moments, generator and epoch cost back into its Trainer."""
        self._unstack(index)
        if self.cost_sums is not None:
            self.members[index].cost_sum = self.cost_sums[index].clone()

    def train_epoch(self, deadline: float, stop: StopRequests) -> bool:
        train, lead = self.config.train, self.members[0].state
        steps = self.members[0].train_x.shape[0] // train.batch_size
        started, running = time.time(), []
        # each member's epoch cost summed step by step in float64, as a single run does (Trainer.train_epoch)
        self.cost_sums = torch.tensor([m.state.cost_sum for m in self.members], dtype=torch.float64,
                                      device=self.members[0].device)
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=lead.position, disable=not self.progress, leave=False,
                   desc=f"{len(self.members)} seeds, epoch {lead.epoch + 1}/{train.epochs}")
        for batches in zip(*(m.epoch_batches() for m in self.members)):
            position = batches[0][0]
            if train.lr_decays:
                for group in self.optimizer.param_groups:
                    group["lr"] = learning_rate(train.lr, train.lr_decay_from, lead.step, steps * train.epochs)
            running.append(self.step([m.train_x[indices] for m, (_, indices) in zip(self.members, batches)]))
            self.cost_sums += running[-1].double()
            for member in self.members:
                member.state.step += 1
                member.state.cost_steps += 1
                member.state.position = position + 1
            bar.update(1)
            synced = len(running) == 20 or position + 1 == steps
            if synced:
                for member, value in zip(self.members, torch.stack(running).mean(0).tolist()):
                    member.check_loss(value, bar)
                running = []
            if train.checkpoint_every and lead.step % train.checkpoint_every == 0:
                self._add_elapsed(time.time() - started)
                started = time.time()
                self.save()
            if stop.requested or time.time() > deadline:
                break
        bar.close()
        self._add_elapsed(time.time() - started)
        return lead.position == steps

    def _add_elapsed(self, seconds: float) -> None:
        for member in self.members:
            member.state.elapsed += seconds

    def run(self, resume: bool = False) -> list[dict]:
        """Train every member to ``epochs`` (or ``max_minutes``); returns their last validation rows."""
        if resume:
            for index, member in enumerate(self.members):
                member.restore()
                self.generators[index] = self._generator(member.config.train.seed)
            if len({(m.state.step, m.state.epoch, m.state.position) for m in self.members}) > 1:
                raise ConfigError(f"the seeds in {self.run_dir} stopped at different steps; resume each alone "
                                  f"with --resume {self.run_dir}/seedNN")
        elif self.config.train.init_from:
            for member in self.members:
                member.initialise()
        self.stack()
        for member in self.members:
            write_text_atomically(member.run_dir / "config.json", json.dumps(member.config.to_dict(), indent=2) + "\n")
        write_text_atomically(self.run_dir / GROUP_FILE,
                              json.dumps({"seeds": [m.config.train.seed for m in self.members]}) + "\n")
        train, lead = self.config.train, self.members[0].state
        deadline = time.time() + (train.max_minutes * 60 if train.max_minutes else float("inf"))
        with contextlib.ExitStack() as context:
            logs = [context.enter_context(RunLog(m.run_dir, m.state.history, echo=False)) for m in self.members]
            stop = context.enter_context(StopRequests())
            while lead.epoch < train.epochs:
                if not self.train_epoch(deadline, stop):
                    self.save()
                    break
                for index, (member, log) in enumerate(zip(self.members, logs)):
                    self.unstack(index)
                    member.end_epoch(log)  # validates, logs, checkpoints as a single run
                self.cost_sums = None
                self.print_epoch()
                if stop.requested:
                    break
            if any(m.saved_at[0] != m.state.step for m in self.members):
                self.save()
        if stop.requested:
            raise Interrupted(f"{stop.requested}: checkpoints written at step {lead.step} (epoch {lead.epoch + 1}); "
                              f"--resume {self.run_dir} continues", stop.exit_code)
        return [m.state.history[-1] if m.state.history else {} for m in self.members]

    def print_epoch(self) -> None:
        if not self.progress:
            return
        t = self.config.train.eval_iterations
        values = [m.state.history[-1][f"valid_ami_{t}"] for m in self.members]
        print(f"epoch {self.members[0].state.epoch}: valid AMI (iteration {t}) median {statistics.median(values):.4f} "
              f"[{min(values):.4f}, {max(values):.4f}] over {len(values)} seeds", flush=True)

    def summary(self) -> dict:
        """Per iteration, the median, min and max over seeds of the last validation's AMI, FG-ARI, cost."""
        rows = [m.state.history[-1] for m in self.members if m.state.history]
        if len(rows) < len(self.members):
            return {}
        t = self.config.train.eval_iterations
        runs = [{"iterations": list(range(1, t + 1)), **{key: [row[f"valid_{name}_{i}"] for i in range(1, t + 1)]
                 for key, name in (("ami", "ami"), ("ari", "ari"), ("denoising_cost", "cost"))}} for row in rows]
        summary = median_over_runs(runs)
        summary["seeds"] = [m.config.train.seed for m in self.members]
        summary["split"], summary["epoch"] = "valid", self.members[0].state.epoch
        return summary


def train_seeds(config: Config, seeds: list[int] | None, train=None, valid=None, run_dir=None,
                device: str | torch.device = "cpu", *, resume: bool = False, compile: str = "off",
                data_dir=None, progress: bool = True, quiet: bool = False) -> list:
    """Train ``config`` once per seed in ``seeds``, together; returns the members' models (eval mode).

    ``run_dir`` (required) gets ``seedS/`` per seed (ordinary run directories), ``seeds.json`` and,
    when every member finished its epochs, ``summary.json`` (median/min/max over seeds of the last
    validation, per iteration). ``resume``: continue the group in ``run_dir`` (``seeds`` and
    ``config`` may be None: read from ``seeds.json`` and each member's checkpoint, with
    ``config.train``'s epochs, max_minutes and checkpoint settings applied when given).
    Other arguments as :func:`tagger.train`.
    """
    from .device import apply_process_settings, machine_name, resolve_device
    from .rundir import check_new_run_dir
    from .trainer import load_splits
    from ..checkpoint import read_checkpoint

    if run_dir is None:
        raise ConfigError("--seeds needs a --run-dir")
    run_dir = Path(run_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--seeds does not run under torchrun (it fills one device with several seeds)")
    if resume:
        seeds = group_seeds(run_dir) if is_group(run_dir) else seeds
        configs = [read_checkpoint(run_dir / f"seed{s}")[0] for s in seeds]
        for stored in configs:
            if config is not None:
                for name in ("epochs", "max_minutes", "checkpoint_every", "checkpoint_minutes"):
                    setattr(stored.train, name, getattr(config.train, name))
    else:
        if config.train.class_cost > 0:  # before validate(), which would name the dataset instead
            raise ConfigError("--seeds does not train semi-supervised runs (--class-cost); train each seed alone")
        config.validate()
        if is_group(run_dir):
            raise ConfigError(f"--run-dir {run_dir} already holds seeds; continue them with --resume {run_dir}")
        for path in [run_dir] + [run_dir / f"seed{s}" for s in seeds]:
            check_new_run_dir(path)
        configs = []
        for seed in seeds:
            configs.append(copy.deepcopy(config))
            configs[-1].train.seed = seed
    for stored in configs:
        stored.validate()
    if train is None:
        train, valid = load_splits(configs[0], data_dir)
    elif valid is None:
        from ..datasets import split_validation

        train, valid = split_validation(train, configs[0].train.valid_fraction, configs[0].train.seed)
    device = resolve_device(str(device))
    apply_process_settings(configs[0].train, device)
    group = SeedGroup(configs, run_dir, train, valid, device, compile, progress)
    if not quiet:
        print(f"training {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}) together: {configs[0].preset} ({train.name}, "
              f"{configs[0].model.norm} norm) on {device} ({machine_name(device)}), {group.precision}, "
              f"compile {group.mode} -> {run_dir}")
    group.run(resume)
    summary = group.summary()
    if summary:
        write_text_atomically(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        if not quiet:
            print(format_summary(summary))
    elif not quiet:
        print(f"stopped at epoch {group.members[0].state.epoch} of {configs[0].train.epochs} (time limit); "
              f"--resume {run_dir} continues")
    return [m.model.eval() for m in group.members]


def format_summary(summary: dict) -> str:
    """Table 1a's rows (median over seeds of the last validation) and each metric's range."""
    seeds = summary["seeds"]
    lines = [format_table(summary, f"valid, epoch {summary['epoch']}: median over {len(seeds)} seeds "
                                   f"({', '.join(map(str, seeds))})")]
    for key, name in (("ami", "AMI"), ("ari", "FG-ARI")):
        lines.append(f"| {name} min-max | " + " | ".join(f"{a:.3f}-{b:.3f}" for a, b in
                                                         zip(summary[f"{key}_min"], summary[f"{key}_max"])) + " |")
    return "\n".join(lines)

"""Two processes with torchrun (gloo, CPU) follow the single-process run at the same global batch."""
import csv
import os
import subprocess
import sys

import pytest
import torch

from tagger.checkpoint import read_checkpoint

ARGS = ["shapes", "--widths", "24-12-12", "--train-examples", "400", "--batch-size", "40", "--epochs", "2",
        "--valid-examples", "40", "--norm", "layer", "--no-progress",
        "--precision", "fp32", "--lr-decay-from", "1"]  # pinned: a 1-epoch run must be the first half of a 2-epoch run


def run(command, env):
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-8000:]  # both ranks: the failing one may not be last


@pytest.mark.slow
def test_two_gloo_processes_match_one(data_dir, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", TAGGER_DATA=str(data_dir))
    run([sys.executable, "-m", "tagger", "train", "--run-dir", str(tmp_path / "one"), *ARGS], env)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "tagger", "train", "--run-dir", str(tmp_path / "two"), *ARGS], env)
    curves = []
    for name in ("one", "two"):
        with open(tmp_path / name / "metrics.csv") as handle:
            curves.append([float(row["train_cost"]) for row in csv.DictReader(handle)])
    assert len(curves[0]) == len(curves[1]) == 2
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)
    _, state_one, weights_one, _ = read_checkpoint(tmp_path / "one")
    _, state_two, weights_two, _ = read_checkpoint(tmp_path / "two")
    assert state_one["step"] == state_two["step"] == 20
    for name in weights_one:
        assert torch.allclose(weights_one[name], weights_two[name], rtol=1e-3, atol=1e-5), name
    # resume under torchrun: 1 epoch, then --resume to 2, ends where the straight run ends
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
                "-m", "tagger", "train"]
    one_epoch = [arg if arg != "2" else "1" for arg in ARGS]  # --epochs 2 -> 1
    run([*torchrun, "--run-dir", str(tmp_path / "resumed"), *one_epoch], env)
    resume = [*torchrun, "--resume", str(tmp_path / "resumed"), "--epochs", "2", "--no-progress"]
    run([arg if arg != "29534" else "29535" for arg in resume], env)  # a port of its own: none reused
    _, state_resumed, weights_resumed, _ = read_checkpoint(tmp_path / "resumed")
    assert state_resumed["step"] == 20
    for name in weights_two:
        assert torch.equal(weights_two[name], weights_resumed[name]), name
    # only rank 0 wrote: one checkpoint, one log
    files = sorted(p.name for p in (tmp_path / "two").iterdir() if p.name != ".lock")  # the writer's lock stays
    assert files == ["checkpoint", "config.json", "metrics.csv", "tb"]


BN_CONFIG = dict(input_size=400, widths=(16, 8, 8), groups=3, iterations=2, norm="batch")


def _bn_rank(rank: int, port: int, output: str) -> None:
    """One of two gloo processes: two eager DDP steps of a BatchNorm model; rank 0 saves the losses."""
    import torch.distributed as dist

    from tagger import Config, ModelConfig, TrainConfig, Tagger
    from tagger.training import apply_process_settings
    from tagger.training.distributed import Ranks
    from tagger.training.steps import make_step

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    config = Config(model=ModelConfig(**BN_CONFIG), train=TrainConfig(batch_size=8, lr=1e-2, seed=3))
    apply_process_settings(config.train, torch.device("cpu"))
    model = Tagger(config.model)
    step = make_step("off", model, config, torch.device("cpu"), Ranks(rank, 2))
    losses = [Ranks(rank, 2).mean(step.fn(batch)).item() for batch in _bn_batches()]  # global mean
    if rank == 0:
        torch.save({"losses": losses}, output)
    dist.destroy_process_group()


def _bn_batches():
    generator = torch.Generator().manual_seed(0)
    return [(torch.rand(8, 400, generator=generator) < 0.3).float() for _ in range(2)]


@pytest.mark.slow
def test_batch_norm_under_two_gloo_processes_is_per_rank(tmp_path):
    """BatchNorm under DDP normalises over each rank's slice: two processes equal one process
    that averages the costs of the two half batches (with the global batch's random numbers), and
    differ from one process normalising over the whole batch."""
    import torch.multiprocessing as mp

    from tagger import Config, ModelConfig, TrainConfig, Tagger
    from tagger.training import apply_process_settings
    from tagger.training.steps import LossOf

    output = tmp_path / "ddp.pt"
    mp.spawn(_bn_rank, args=(29541, str(output)), nprocs=2, join=True)
    ddp = torch.load(output)

    def single(halves: bool):
        config = Config(model=ModelConfig(**BN_CONFIG), train=TrainConfig(batch_size=8, lr=1e-2, seed=3))
        apply_process_settings(config.train, torch.device("cpu"))
        model = Tagger(config.model)
        loss_of, optimizer, losses = LossOf(model), torch.optim.Adam(model.parameters(), lr=1e-2), []
        for batch in _bn_batches():
            optimizer.zero_grad(set_to_none=True)
            draws = model.draw(8, 3, batch.device, batch.dtype)
            parts = [(0, 4), (4, 8)] if halves else [(0, 8)]
            loss = sum(loss_of(batch[a:b], draws.shard(a, b)) for a, b in parts) / len(parts)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses

    halves, whole = single(halves=True), single(halves=False)
    # the first cost is before any update; the second follows one Adam step on gradients that
    # came through per-rank batch statistics: equal to the half-batch run, not to the whole-batch one
    assert ddp["losses"] == pytest.approx(halves, abs=1e-5)
    assert abs(whole[1] - halves[1]) > 1e-3


@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_after_the_same_step(data_dir, tmp_path):
    """SIGINT to rank 1 only: both ranks stop at the next sync point, rank 0 checkpoints, both exit
    130 (no rank is left waiting in a collective), and --resume then finishes the run."""
    import signal
    import time

    env = dict(os.environ, OMP_NUM_THREADS="1", TAGGER_DATA=str(data_dir), WORLD_SIZE="2",
               MASTER_ADDR="127.0.0.1", MASTER_PORT="29536")
    args = [sys.executable, "-m", "tagger", "train", "shapes", "--widths", "24-12-12", "--train-examples", "4000",
            "--batch-size", "20", "--epochs", "2", "--valid-examples", "40", "--no-progress",
            "--run-dir", str(tmp_path / "run")]
    ranks = [subprocess.Popen(args, env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    metrics = tmp_path / "run" / "metrics.csv"
    started = time.time()
    while not metrics.exists() and time.time() - started < 120:  # epoch 1 done: mid-epoch 2 next
        time.sleep(0.05)
    time.sleep(0.5)
    ranks[1].send_signal(signal.SIGINT)
    codes = [process.wait(timeout=120) for process in ranks]
    assert codes == [130, 130], [process.stderr.read()[-500:] for process in ranks]
    _, state, _, _ = read_checkpoint(tmp_path / "run")
    assert 200 <= state["step"] < 400 and state["step"] % 20 == 0  # at an epoch end or a sync point
    resumed = [subprocess.Popen([sys.executable, "-m", "tagger", "train", "--resume", str(tmp_path / "run"),
                                 "--no-progress"], env=dict(env, RANK=str(r), LOCAL_RANK=str(r), MASTER_PORT="29537"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    assert [process.wait(timeout=300) for process in resumed] == [0, 0]
    assert read_checkpoint(tmp_path / "run")[1]["step"] == 400

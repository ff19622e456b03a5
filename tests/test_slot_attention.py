"""This project's Slot Attention baseline (tagger/baselines/slot_attention.py): attention over slots,
masks, a short run that learns, and the command line."""
import json

import numpy as np
import pytest
import torch

from tagger.baselines.slot_attention import SlotAttention, SlotAutoEncoder, SlotConfig, train_slot_attention
from tagger.cli import main
from tagger.datasets import Split

from test_conv_ladder import squares


def test_attention_is_normalised_over_slots_and_masks_sum_to_one():
    torch.manual_seed(0)
    attention = SlotAttention(slots=5, iterations=2, features=8, slot_size=16)
    slots, weights = attention(torch.randn(3, 30, 8))
    assert slots.shape == (3, 5, 16) and weights.shape == (3, 5, 30)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, 30))
    model = SlotAutoEncoder((6, 7, 3), slots=4, features=8, slot_size=16)
    out = model(torch.rand(2, 6 * 7 * 3))
    assert out["masks"].shape == (2, 4, 42) and out["recon"].shape == (2, 126) and out["rgb"].shape == (2, 4, 126)
    torch.testing.assert_close(out["masks"].sum(dim=1), torch.ones(2, 42))
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(model(torch.ones(1, 126), generator())["masks"], model(torch.ones(1, 126), generator())["masks"])


def test_short_run_learns_to_reconstruct(tmp_path):
    """120 steps on coloured squares (~10 s): the reconstruction loss falls, below that of an all-black
    image (slot attention needs thousands of steps to group; 300 steps reached FG-ARI 0.26 here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = SlotConfig(dataset="tetrominoes", slots=3, features=16, slot_size=32, epochs=2, batch_size=16,
                            lr=2e-3, warmup_steps=20, valid_examples=100)
        splits = {"train": squares(960, 1), "valid": squares(100, 2), "test": squares(100, 3)}
        result = train_slot_attention(config, splits, tmp_path / "run", torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [float(row.split(",")[header.index("loss")]) for row in rows[1:]]
    first = float(np.mean(splits["train"].features ** 2))  # the loss of an all-black reconstruction
    assert len(losses) == 2 and losses[-1] < losses[0] < first and losses[-1] < 0.9 * first, (first, losses)
    assert result["steps"] == 120 and 0.0 <= result["test_ari"] <= 1.0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["epochs_run"] == 2
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_cli_refuses_a_dataset_without_objects_and_foreign_flags(tmp_path, capsys):
    assert main(["baseline", "--model", "slot-attention", "--run-dir", str(tmp_path / "a")]) == 2
    assert "--dataset tetrominoes or shapes" in capsys.readouterr().err
    assert main(["baseline", "--model", "slot-attention", "--dataset", "shapes", "--widths", "10-10",
                 "--run-dir", str(tmp_path / "b")]) == 2
    assert "--widths" in capsys.readouterr().err

"""Bit-identical CPU training: a fixed seed and thread count give exactly the recorded weights.

The checksum was recorded on the tree before the training code moved into ``tagger/training``;
any change to the training step, data order, RNG streams or initialisation changes it. If a
change is meant to alter training, re-record it with ``python tests/test_checksum.py`` and say
why in the commit.
"""
import hashlib
import os
import sys

import pytest
import torch

from tagger import preset
from tagger.training.device import cpu_kind

# oneDNN/ATen pick kernels by the CPU's vector width and by its vendor and matrix units, so the
# bits differ between kinds of CPU (an AMD and an Intel AVX-512 machine gave different sums):
# one checksum per kind (cpu_kind()); other kinds skip.
RECORDED = {
    "AVX2 AuthenticAMD": "3572ad3bf86c318ad21884eaca67ca9fd6823d0ddea8b2ddca6841a80993126c",  # 2-core AMD EPYC
    "AVX512 GenuineIntel amx": "b9439d12e0630acdc31dcc69eff11a8f1d223f434b2c0b067b669916f338add6",  # 2-core Xeon
    "AVX512 AuthenticAMD": "18e20b472407771b03599ebe529aa6d62d97ca066d14e94f41901224f443031d",  # 2-core EPYC, AVX-512 BF16
}


def train_and_hash(run_dir, data_dir=None) -> str:
    """Two epochs of 20 steps of the ``quick`` Shapes model (batch 20, seed 10, fp32, constant
    rate), one thread."""
    import tagger

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = preset("quick")
        config.train.epochs, config.train.batch_size = 2, 20
        config.train.train_examples, config.train.valid_examples = 400, 100
        # the recipe the checksums were recorded with, whatever the preset later becomes
        config.train.precision, config.train.lr_decay_from = "fp32", 1.0
        model = tagger.train(config, run_dir=run_dir, data_dir=data_dir, progress=False, quiet=True)
        digest = hashlib.sha256()
        for name, value in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().contiguous().numpy().tobytes())
        return digest.hexdigest()
    finally:
        torch.set_num_threads(threads)


def test_training_is_bit_identical_to_the_recorded_checksum(tmp_path, data_dir):
    kind = cpu_kind()
    if kind not in RECORDED:
        pytest.skip(f"no checksum recorded for {kind!r} CPUs (record one: python tests/test_checksum.py)")
    assert train_and_hash(tmp_path / "run", data_dir) == RECORDED[kind]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        print(cpu_kind(), train_and_hash(os.path.join(folder, "run"), sys.argv[1] if len(sys.argv) > 1 else None))

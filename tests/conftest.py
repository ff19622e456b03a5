import os

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A shared data cache for the session (Shapes are generated once, ~3 s)."""
    path = os.environ.get("TAGGER_TEST_DATA") or str(tmp_path_factory.mktemp("data"))
    os.environ["TAGGER_DATA"] = path
    return path


@pytest.fixture
def fg_ari_before_after(tmp_path):
    """Train a config briefly on CPU; return the validation FG-ARI at iteration 3 before and after."""
    from tagger.evaluate import evaluate
    from tagger.training import Trainer, apply_process_settings

    def run(config):
        apply_process_settings(config.train, torch.device("cpu"))
        trainer = Trainer(config, tmp_path / "run", device="cpu", data_dir=tmp_path, progress=False)
        before = evaluate(trainer.model, trainer.valid_x, trainer.valid_objects, iterations=3)
        trainer.run()
        after = evaluate(trainer.model, trainer.valid_x, trainer.valid_objects, iterations=3)
        return before["ari"][-1], after["ari"][-1]

    return run

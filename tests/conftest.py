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
    import tagger
    from tagger.evaluate import evaluate
    from tagger.training.trainer import load_splits

    def run(config):
        train, valid = load_splits(config, tmp_path)
        valid_x = torch.as_tensor(valid.features[:config.train.valid_examples])
        valid_objects = torch.as_tensor(valid.objects[:config.train.valid_examples].astype("int64"))
        torch.manual_seed(config.train.seed)  # the weights tagger.train starts from
        before = evaluate(tagger.Tagger(config.model), valid_x, valid_objects, iterations=3)
        model = tagger.train(config, train, valid, tmp_path / "run", progress=False, quiet=True)
        after = evaluate(model, valid_x, valid_objects, iterations=3)
        return before["ari"][-1], after["ari"][-1]

    return run

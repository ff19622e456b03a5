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

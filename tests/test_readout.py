"""The rank bound of the mask read-out (tagger.baselines.readout)."""
import numpy as np
import pytest
import torch

from tagger import Tagger, preset
from tagger.baselines.readout import model_basis, score, subspace


def scenes(n: int, pixels: int = 30, seed: int = 0) -> np.ndarray:
    """``(n, pixels)`` random object ids 0..3 (each scene its own random layout)."""
    return np.random.default_rng(seed).integers(0, 4, size=(n, pixels))


def test_a_full_rank_subspace_draws_every_object_exactly():
    train, test = scenes(200), scenes(20, seed=1)
    mean, basis = subspace(train, 4, 30)
    assert basis.shape == (30, 30)
    assert score(test, 4, mean, basis) == pytest.approx(np.ones(20))


def test_a_narrow_subspace_draws_only_the_layouts_it_has_seen():
    """Two fixed layouts give eight indicator images, rank <= 7 once their mean is removed: rank 7
    draws them exactly; rank 1 cannot, and neither can rank 7 draw random layouts."""
    layouts = scenes(2, seed=2)
    train = layouts[np.arange(100) % 2]
    mean, basis = subspace(train, 4, 7)
    assert score(layouts, 4, mean, basis[:, :7]) == pytest.approx([1.0, 1.0])
    assert score(layouts, 4, mean, basis[:, :1]).mean() < 0.9
    assert score(scenes(20, seed=3), 4, mean, basis[:, :7]).mean() < 0.5


def test_a_models_log_masks_lie_in_a_subspace_as_wide_as_its_bottom_layer():
    """The claim the bound rests on: with one batch (one set of normalisation statistics) the
    group-centred log masks of P = 100 pixels span at most H0 = 6 directions."""
    config = preset("quick")
    config.model.input_size, config.model.widths = 100, (6, 4, 4)
    torch.manual_seed(0)
    model = Tagger(config.model).eval()
    with torch.no_grad():  # an untrained Ladder's decoder outputs zeros (equal masks): move it off that
        for parameter in model.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    features = (torch.rand(50, 100) < 0.3).float().numpy()
    basis = model_basis(model, features, iterations=3, seed=0)  # (P, H0)
    assert basis.shape == (100, 6)
    with torch.no_grad():
        masks = model.infer(torch.as_tensor(features), iterations=3, generator=torch.Generator().manual_seed(0)).masks[-1]
    logs = masks.log().double()
    logs = (logs - logs.mean(dim=1, keepdim=True)).reshape(-1, 100).numpy()  # (B*K, P)
    assert np.abs(logs).max() > 0.1  # the groups' masks differ
    residual = logs - (logs @ basis) @ basis.T
    assert np.abs(residual).max() < 1e-6 * np.abs(logs).max()
    assert np.linalg.matrix_rank(logs, tol=1e-6 * np.abs(logs).max()) <= 6

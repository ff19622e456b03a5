"""The convolutional Ladder mapping (``--mapping conv``, tagger/conv_ladder.py; this project's extension):
shapes, masks, config checks, shift equivariance, the fc path untouched, and a short training that groups."""
import numpy as np
import pytest
import torch

import tagger
from tagger import Config, ConfigError, ModelConfig, Tagger, TrainConfig
from tagger.conv_ladder import ConvLadder, MapCombinator
from tagger.datasets import Split
from tagger.metrics import ari
from tagger.model import Draws
from test_model import perturbed  # decoder combinators off their start: outputs depend on every level


def conv_config(shape=(7, 9, 3), **extra) -> ModelConfig:
    size = int(np.prod(shape))
    base = dict(input_size=size, image_shape=shape, channels=shape[2] if len(shape) == 3 else 1, mapping="conv",
                conv_channels=(4, 6, 8), conv_strides=(2, 2), z0=0.5,
                likelihood="continuous" if len(shape) == 3 else "binary")
    return ModelConfig(**(base | extra))




@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("shape", [(7, 9, 3), (8, 8)])  # odd sizes: the decoder crops what it upsamples
def test_shapes_and_masks_sum_to_one_for_any_groups_and_iterations(norm, shape):
    torch.manual_seed(0)
    model = perturbed(Tagger(conv_config(shape, norm=norm)))
    size, pixels = model.config.input_size, shape[0] * shape[1]
    x = (torch.rand(3, size) < 0.4).float()
    for groups, iterations in [(1, 1), (5, 2)]:
        out = model.infer(x, iterations=iterations, groups=groups)
        assert out.masks.shape == (iterations, 3, groups, pixels)
        assert out.reconstructions.shape == (iterations, 3, groups, size)
        assert out.top.shape == (iterations, 3, groups, 8)
        torch.testing.assert_close(out.masks.sum(2), torch.ones(iterations, 3, pixels))
        assert torch.isfinite(out.costs).all()
    loss = model(x).loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.flops_per_example() == 2.0 * model.mapping.macs_per_group() * 4 * 3


def test_combinator_params_are_per_channel_and_broadcast_over_pixels():
    combinator = MapCombinator(5)
    assert combinator.params.shape == (10, 5, 1, 1)
    lateral, u = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 3, 4)
    torch.testing.assert_close(combinator(lateral, u), torch.zeros_like(lateral))  # the start: mu = w = 0
    with torch.no_grad():
        combinator.params.normal_()
    # pixel (1, 2) of channel 3 follows the FC combinator with that channel's ten parameters
    single = tagger.ladder.GaussCombinator(1)
    with torch.no_grad():
        single.params.copy_(combinator.params[:, 3, 0])
    torch.testing.assert_close(combinator(lateral, u)[:, 3, 1, 2], single(lateral[:, 3, 1, 2, None], u[:, 3, 1, 2, None])[:, 0])


@pytest.mark.parametrize("shift", [(4, 0), (0, 4), (4, 8), (-4, 4)])
def test_masks_shift_with_the_input_by_multiples_of_the_total_stride(shift):
    """Circular padding, LayerNorm, no coordinate channels: the mapping commutes with shifts by a
    multiple of the total stride (2 x 2 = 4), so shifting the image and the initial mask logits
    shifts every iteration's masks and reconstructions by as much."""
    torch.manual_seed(0)
    config = conv_config((8, 12, 3), norm="layer", conv_padding="circular")
    model = perturbed(Tagger(config)).eval()
    x = torch.rand(2, config.input_size)
    logits = torch.randn(2, 3, 8 * 12)

    def run(image, start):
        out = model(image, iterations=3, groups=3, corrupt=False, keep=True, draws=Draws(None, start))
        return out.masks, out.reconstructions

    def roll(values, channels):  # (..., H*W*channels) pixel-major -> shifted
        image = values.reshape(*values.shape[:-1], 8, 12, channels)
        return image.roll(shift, dims=(-3, -2)).reshape(values.shape)

    masks, recons = run(x, logits)
    shifted_masks, shifted_recons = run(roll(x, 3), roll(logits, 1))
    torch.testing.assert_close(shifted_masks, roll(masks, 1), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(shifted_recons, roll(recons, 3), atol=1e-5, rtol=1e-4)
    # by one pixel (not a multiple of the stride) the masks do not just move
    odd_masks, _ = run(roll(x, 3).roll(3, -1), roll(logits, 1).roll(1, -1))
    assert not torch.allclose(odd_masks, roll(masks, 1).roll(1, -1), atol=1e-3)


def test_config_checks_are_one_line_errors():
    with pytest.raises(ConfigError, match="image shape"):
        conv_config(image_shape=(7, 8, 3)).validate()
    with pytest.raises(ConfigError, match="image shape"):
        ModelConfig(mapping="conv", input_size=400).validate()  # no image shape
    with pytest.raises(ConfigError, match="conv-strides"):
        conv_config(conv_strides=(2,)).validate()
    with pytest.raises(ConfigError, match="conv-kernel"):
        conv_config(conv_kernel=4).validate()
    with pytest.raises(ConfigError, match="mapping"):
        ModelConfig(mapping="transformer").validate()
    ModelConfig(input_size=400).validate()  # fc ignores image_shape
    stored = Config.from_dict(Config(model=conv_config()).to_dict() | {})
    assert stored.model.image_shape == (7, 9, 3) and stored.model.conv_strides == (2, 2)
    for dataset in ("shapes", "tetrominoes"):
        config = tagger.preset("conv-quick", dataset).validate()
        assert config.model.mapping == "conv" and config.preset == "conv-quick"
        assert tagger.preset("quick", dataset).model.mapping == "fc"


def test_fc_model_keeps_its_parameters_and_builds_no_conv():
    """The fc path is the paper's, unchanged (tests/test_checksum.py pins its training bit for bit)."""
    model = Tagger(ModelConfig(input_size=16, widths=(12, 8, 6)))
    names = {name.split(".")[0] for name in model.state_dict()}
    assert names == {"input_weight", "input_bias", "mapping", "z_weight", "z_scale", "z_bias", "m_weight", "m_scale"}
    assert not any(isinstance(module, ConvLadder) for module in model.modules())
    conv = Tagger(conv_config())
    assert not hasattr(conv, "input_weight") and isinstance(conv.mapping, ConvLadder)


SIZE, BLOCK = 12, 4
PALETTE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32)


def squares(n: int, seed: int) -> Split:
    """12x12 RGB scenes with two non-overlapping 4x4 squares of two different colours on black."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, SIZE, SIZE, 3), np.float32)
    objects = np.zeros((n, SIZE, SIZE), np.uint8)
    for i in range(n):
        colours = rng.choice(len(PALETTE), 2, replace=False)
        for k in range(2):
            while True:
                r, c = rng.integers(0, SIZE - BLOCK + 1, 2)
                if (objects[i, r:r + BLOCK, c:c + BLOCK] == 0).all():
                    break
            objects[i, r:r + BLOCK, c:c + BLOCK] = k + 1
            x[i, r:r + BLOCK, c:c + BLOCK] = PALETTE[colours[k]]
    return Split(f"squares/{seed}", x.reshape(n, -1), objects.reshape(n, -1), (SIZE, SIZE, 3), binary=False)


@pytest.mark.slow
def test_short_training_learns_to_group_coloured_squares(tmp_path):
    """100 steps of ``tagger.train`` (batch 16, K = 3, T = 3, ~20 s on one core): FG-ARI rises clearly."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_config = conv_config((SIZE, SIZE, 3), norm="batch", conv_channels=(8, 16, 16), groups=3,
                                   iterations=3, noise=0.2, z0=0.15, v_param="fixed", v_init=0.3)
        config = Config(preset="test-conv", model=model_config,
                        train=TrainConfig(dataset="tetrominoes", epochs=1, batch_size=16, lr=3e-3, seed=0,
                                          valid_examples=100, precision="fp32"))
        train, valid = squares(1600, 1), squares(200, 2)
        x, objects = torch.as_tensor(valid.features), torch.as_tensor(valid.objects.astype(np.int64))

        def score(model) -> float:
            masks = model.eval().infer(x, iterations=5, generator=torch.Generator().manual_seed(0)).masks[-1]
            return float(ari(objects, masks).mean())

        torch.manual_seed(0)
        before = score(Tagger(model_config))
        model = tagger.train(config, train, valid, tmp_path / "run", progress=False, quiet=True)
        after = score(model)
    finally:
        torch.set_num_threads(threads)
    print(f"FG-ARI before {before:.3f}, after {after:.3f}")
    assert before < 0.1 and after > 0.2, (before, after)

"""Named presets: plain data, one function per dataset family; ``preset(name, dataset)`` returns a
fresh :class:`~tagger.config.Config`. How each was chosen: docs/notebook.md and docs/continuous.md."""
from __future__ import annotations

from .config import CLASSES, DATASETS, USER, Config, ModelConfig, TrainConfig
from .errors import ConfigError


def _shapes(preset: str, **model) -> Config:
    return Config(preset=preset, model=ModelConfig(image_shape=(20, 20), **model), train=TrainConfig(dataset="shapes"))


def _texture(preset: str, n_digits: int, **model) -> Config:
    base = dict(input_size=784, likelihood="continuous", noise=0.2, z0=0.5,
                widths=(3000, 2000, 1000), image_shape=(28, 28))
    base.update(model)
    return Config(preset=preset, model=ModelConfig(**base),
                  train=TrainConfig(dataset="texture-mnist", n_digits=n_digits, epochs=150, lr=1e-3, seed=1))


def preset(name: str, dataset: str = "shapes", n_digits: int = 2) -> Config:
    """Return a fresh :class:`Config` for a named preset.

    Shapes:
        ``paper``: the reference run (2000-1000-500, K=4, T=3, bit-flip 0.2, Adam 4e-4,
        100 epochs of batch 100), LayerNorm (the paper's best; ``--norm batch`` for the
        reference code's BatchNorm). ``paper-bn``: the same with BatchNorm.
        ``quick``: CPU-sized (500-250-250, Adam 4e-3 settling over the last 9 of 30 epochs, bf16
        where the CPU has bf16 instructions): the demo; docs/results.md and docs/performance.md
        for its time on 2-core CPUs, docs/notebook.md for how it was chosen.
    TextureMNIST:
        ``paper``: 3000-2000-1000, Gaussian 0.2, z0 0.5, Adam 1e-3, 150 epochs, BatchNorm as
        the reference code (``paper-ln``: LayerNorm, which we measured collapsing to identical
        groups on TextureMNIST2, see docs/notebook.md). ``quick``: CPU-sized, BatchNorm, the
        reference's recipe (it stays on a spatial template within CPU budgets).
        ``quick-narrow``: the continuous study's recipe (BatchNorm 64-32-16, v falling from 0.2,
        T=5, Adam 2e-3 decaying over the second half, batch 32, 10 epochs): groups the digits
        in ~20 minutes on two cores.
        ``quick-fixed-v``: LayerNorm, v fixed at 0.2 (does not group TextureMNIST).
        ``paper-semi``: the reference's second stage (``runner-freq20-2mnist.py --continue``):
        3000-2000-1000-500-250-11, T=4, noise 0.18, Adam 2e-4, 50 epochs, class cost 0.1 on
        1,000 labels; start it from a pretrained run with ``--init RUN``. ``quick-semi``:
        the same on the ``quick`` widths (500-250-250-100-11). ``quick-narrow-semi``: the same
        stage on ``quick-narrow``'s widths and recipe, for a CPU (start it from
        ``--init texture-mnist2-quick-narrow``).
    Tetrominoes: ``paper``: TextureMNIST's reference recipe; ``quick``: the study's narrow
        recipe (``quick-narrow``'s) with K = 6 groups, 3 epochs. Spectrograms: see ``_spectrograms``.
    Spike rasters: ``quick``, Shapes' ``quick`` on 20 x 24 rasters (``_spikes``).
    This project's extension, not the paper's: ``conv-quick`` (Shapes, Tetrominoes), Tagger with the
    convolutional Ladder mapping (:mod:`tagger.conv_ladder`), CPU-sized; see ``_conv_quick_shapes``.
    """
    presets = _catalogue(dataset, n_digits)
    if name not in presets:
        raise ConfigError(f"--preset must be one of {', '.join(presets)}, got {name!r}")
    return presets[name]()


def _catalogue(dataset: str, n_digits: int) -> dict:
    """The presets of one dataset family, by name, each a function returning a fresh Config."""
    if dataset == "shapes":
        return {
            "paper": lambda: _shapes("paper", norm="layer"),
            "paper-bn": lambda: _shapes("paper-bn", norm="batch"),
            "quick": lambda: _quick_shapes(),
            "conv-quick": lambda: _conv_quick_shapes(),
        }
    if dataset in ("texture-mnist", "texture_mnist"):
        return {
            "paper": lambda: _texture("paper", n_digits, norm="batch"),
            "paper-ln": lambda: _texture("paper-ln", n_digits, norm="layer"),
            "quick": lambda: _quick_texture(n_digits),
            "quick-fixed-v": lambda: _quick_texture(n_digits, fixed_v=True),
            "quick-narrow": lambda: _narrow(_texture("quick-narrow", n_digits), epochs=10),
            "paper-semi": lambda: _semi_texture(n_digits),
            "quick-semi": lambda: _semi_texture(n_digits, quick=True),
            "quick-narrow-semi": lambda: _narrow_semi_texture(n_digits),
        }
    if dataset == "tetrominoes":
        return {
            "paper": lambda: _tetrominoes("paper", norm="batch", widths=(3000, 2000, 1000)),
            "quick": lambda: _quick_tetrominoes(),
            "conv-quick": lambda: _conv_quick_tetrominoes(),
        }
    if dataset == "spectrograms":
        return {
            "quick": lambda: _spectrograms("quick", active_bins=True),
            "quick-logmag": lambda: _spectrograms("quick-logmag", active_bins=False),
            "large": lambda: _spectrograms("large", active_bins=True, large=True),
        }
    if dataset == "spikes":
        return {"quick": lambda: _spikes()}
    raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")


def _tetrominoes(preset: str, **model) -> Config:
    """Tetrominoes (35x35 RGB, per-pixel masks): TextureMNIST's continuous recipe by default."""
    base = dict(input_size=35 * 35 * 3, channels=3, likelihood="continuous", noise=0.2,
                z0=TETROMINOES_MEAN, image_shape=(35, 35, 3))
    base.update(model)
    return Config(preset=preset, model=ModelConfig(**base),
                  train=TrainConfig(dataset="tetrominoes", epochs=150, lr=1e-3, seed=1))


TETROMINOES_MEAN = 0.12  # mean pixel value of the training split, rounded (z0 = the data mean)


def _narrow(config: Config, epochs: int) -> Config:
    """The continuous study's CPU recipe (docs/continuous.md): BatchNorm, narrow layers 64-32-16,
    the reference's slowly falling v started at 0.2, five iterations in training, Adam 2e-3 on
    batches of 32, decaying linearly to 0 over the second half. Found on Tetrominoes (groups
    become colour specialists; valid FG-ARI 0.32-0.39 in two seeds after 3,750-5,625 steps,
    where v fixed at 0.2 with three iterations peaked at 0.30-0.32 and slipped to 0.20), then
    the first recipe to group TextureMNIST on a CPU, where the decay holds the grouping that a
    constant rate lets slip (TextureMNIST2 test AMI 0.304 against 0.231); on Tetrominoes it
    gave test FG-ARI 0.450 against 0.420 and 0.430 (one seed against two)."""
    model = config.model
    model.norm, model.widths, model.v_param, model.v_init, model.iterations = "batch", (64, 32, 16), "reference", 0.2, 5
    config.train.epochs, config.train.lr, config.train.batch_size = epochs, 2e-3, 32
    config.train.lr_decay_from = 0.5
    return config


def _quick_tetrominoes() -> Config:
    """The narrow recipe with K = 6 in training (two spare groups for six colours; three epochs
    take about the time of four at K = 4): test FG-ARI 0.627 against 0.450 at K = 4 with seed 1;
    0.323 with seed 2, where K = 4 with a constant rate did not group."""
    return _narrow(_tetrominoes("quick", groups=6), epochs=3)


def _spectrograms(preset: str, active_bins: bool, large: bool = False) -> Config:
    """Sound mixtures (48 bins x 32 frames, three sources, K = 4) with the Shapes networks: `quick`
    (500-250-250, Adam 4e-3, 10 epochs: Shapes' `quick` recipe) on the active-bin map (binary) or,
    `quick-logmag`, on the log magnitude (continuous, v fixed at 0.2 as the continuous study found
    best); `large` is Shapes' `paper` recipe (2000-1000-500, Adam 4e-4, 100 epochs) on the active
    bins, for a GPU. z0 = the data mean (0.23 for both inputs)."""
    model = dict(input_size=48 * 32, image_shape=(48, 32), norm="layer", widths=(2000, 1000, 500) if large else (500, 250, 250), z0=0.23)
    if not active_bins:
        model |= dict(likelihood="continuous", noise=0.2, v_param="fixed", v_init=0.2)
    train = TrainConfig(dataset="spectrograms", active_bins=active_bins, epochs=100 if large else 10,
                        lr=4e-4 if large else 4e-3)
    return Config(preset=preset, model=ModelConfig(**model), train=train)


def _spikes() -> Config:
    """Spike rasters (20 neurons x 24 bins, three sequence occurrences, K = 4) with Shapes' `quick`
    network and recipe unchanged (500-250-250, LayerNorm, bit-flip 0.2, T = 3, Adam 4e-3 settling
    over the last 9 of 30 epochs): the same code on data that is not an image.
    z0 = the data mean (0.16)."""
    config = _quick_shapes()
    config.preset = "quick"
    config.model.input_size, config.model.z0, config.model.image_shape = 20 * 24, 0.16, (20, 24)
    config.train.dataset = "spikes"
    return config


def _quick_shapes() -> Config:
    config = _shapes("quick", norm="layer", widths=(500, 250, 250))
    config.train.epochs = 30
    config.train.lr = 4e-3  # chosen from short runs of 2e-3 / 4e-3 / 1e-3, see docs/notebook.md
    config.train.lr_decay_from = 0.7  # settle the last 9 epochs (constant-rate AMI wobbles by 0.01 there)
    config.train.precision = "auto"  # bf16 on CPUs with bf16 instructions: 1.35-1.5x, same curve (docs/performance.md)
    return config


def _quick_texture(n_digits: int, fixed_v: bool = False) -> Config:
    if not fixed_v:
        config = _texture("quick", n_digits, norm="batch", widths=(500, 250, 250))
        config.train.epochs, config.train.lr = 8, 1e-3
        return config
    # what the continuous study (docs/continuous.md) found: LayerNorm, v fixed at 0.2, small batches
    config = _texture("quick-fixed-v", n_digits, norm="layer", widths=(500, 250, 250), v_param="fixed", v_init=0.2)
    config.train.epochs, config.train.lr, config.train.batch_size = 3, 2e-3, 32
    return config


def _semi_texture(n_digits: int, quick: bool = False) -> Config:
    widths = (500, 250, 250, 100, CLASSES + 1) if quick else (3000, 2000, 1000, 500, 250, CLASSES + 1)
    config = _texture("quick-semi" if quick else "paper-semi", n_digits, norm="batch", widths=widths,
                      iterations=4, noise=0.18)
    config.train.epochs = 8 if quick else 50
    config.train.lr = 1e-3 if quick else 2e-4
    config.train.class_cost, config.train.labeled = 0.1, 1000
    config.train.eval_iterations = 4  # the reference monitors its class error at the training T
    return config


def _narrow_semi_texture(n_digits: int) -> Config:
    """The second stage on top of ``quick-narrow`` (64-32-16 plus new 16-11 top layers): the
    reference's semi-supervised values (T = 4, noise 0.18, class cost 0.1, 1,000 labels) with
    the narrow recipe's batch of 32 and Adam 2e-3 decaying over the second half, 5 epochs (10
    epochs at 1e-3 ended at the same validation error, docs/results.md). v is not set, so
    ``--init`` hands on the pretrained v, as the reference's ``--continue`` does."""
    config = _semi_texture(n_digits, quick=True)
    config.preset, config.model.widths = "quick-narrow-semi", (64, 32, 16, 16, CLASSES + 1)
    config.train.epochs, config.train.lr, config.train.batch_size, config.train.lr_decay_from = 5, 2e-3, 32, 0.5
    return config


USER_PRESETS = ("quick", "paper")


def for_data(name: str, split) -> Config:
    """A preset for your own images (``tagger train --data PATH``), sized by the data: the input
    size, channels, image shape, likelihood (binary when every value is 0 or 1) and z0 (the data
    mean) come from ``split``; K is the model's default 4 (``--groups``).

    Binary data gets Shapes' recipes, continuous data the colour-scene ones: ``quick`` is Shapes'
    ``quick`` or Tetrominoes' ``quick`` (the narrow recipe) with the same number of optimiser
    steps as on their 50,000 images (epochs scaled to the data, at least 1); ``paper`` is Shapes'
    ``paper`` or TextureMNIST's ``paper`` (the reference's recipes, their epochs).
    """
    if name not in USER_PRESETS:
        raise ConfigError(f"--preset for --data must be one of {', '.join(USER_PRESETS)}, got {name!r}")
    family = "shapes" if split.binary else "tetrominoes"
    config = preset(name, family)
    shape = tuple(int(v) for v in split.image_shape)
    model, train = config.model, config.train
    model.input_size, model.image_shape = split.input_size, shape
    model.channels = shape[2] if len(shape) == 3 else 1
    model.z0 = round(float(split.features.mean()), 2)
    if not split.binary:
        model.groups = ModelConfig.groups  # Tetrominoes' K = 6 is for its six colours
    if name == "quick":
        steps = train.epochs * (50_000 // train.batch_size)  # the built-in recipe's step count
        per_epoch = max(1, len(split) // train.batch_size)
        train.epochs = max(1, round(steps / per_epoch))
    train.dataset = USER
    config.preset = name
    return config


# This project's extension, not the paper's: the convolutional Ladder mapping (tagger/conv_ladder.py).
CONV_QUICK = dict(mapping="conv", norm="layer", conv_channels=(16, 32, 32), conv_strides=(2, 2), conv_kernel=3)


def _conv_quick_shapes() -> Config:
    """``quick``'s recipe (bit-flip 0.2, K = 4, T = 3, Adam 4e-3 settling over the last 30 %, bf16
    where the CPU has it) with a small conv Ladder: 16 channels at 20 x 20, 32 at 10 x 10 and 5 x 5,
    3 x 3 kernels, LayerNorm (per group and example: a group never depends on its batch); 10 epochs
    over the first 20,000 training images (200 steps, ~4.5 min on a busy 2-core CPU, where all 50,000
    took ~11; ``--train-examples 0`` for all)."""
    config = _quick_shapes()
    config.preset = "conv-quick"
    for key, value in CONV_QUICK.items():
        setattr(config.model, key, value)
    config.train.epochs, config.train.train_examples = 10, 20_000
    return config


def _conv_quick_tetrominoes() -> Config:
    """The narrow recipe's likelihood, normalisation and schedule (v falling from 0.2, BatchNorm, Adam
    2e-3 on batches of 32, decaying over the second half) with a lighter conv Ladder than Shapes' (8
    channels at 35 x 35, 16 at 18 x 18, 32 at 9 x 9: the full-resolution maps are most of a step's
    time), K = 4 (three pieces and the background), T = 3 in training, bf16 where the CPU has it.
    An epoch is the first 10,000 training scenes (``--train-examples 0`` for all 60,000): ~310 steps,
    minutes on a 2-core CPU, where a pass over all 60,000 took about an hour there; 3 epochs."""
    config = _tetrominoes("conv-quick", groups=4, iterations=3, v_param="reference", v_init=0.2,
                          **(CONV_QUICK | dict(norm="batch", conv_channels=(8, 16, 32))))
    config.train.epochs, config.train.lr, config.train.batch_size, config.train.lr_decay_from = 3, 2e-3, 32, 0.5
    config.train.train_examples, config.train.precision = 10_000, "auto"
    return config

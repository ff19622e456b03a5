"""Typed configuration: model, training and run configs, each field with its flag's help; saved with every run
(the named presets are in :mod:`tagger.presets`)."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .removed import without_removed


def option(default, help: str, **meta):
    """A config field with its command-line help; ``tagger.cli.flags`` turns every field into a
    flag (``--field-name``) unless ``flag=None``. ``flag`` renames it, ``choices`` and ``metavar``
    are passed to argparse."""
    return field(default=default, metadata={"help": help, **meta})


V_PARAMS = ("reference", "fixed")
MAX_SEED = 2**63 - 3  # torch generators take 64-bit seeds; the run also uses seed + 1 and seed + 2


def check_finite(section) -> None:
    """Every float setting of a config section is a finite number (NaN and inf are refused by name)."""
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if isinstance(value, float) and not math.isfinite(value):
            flag = "--" + item.metadata.get("flag", item.name).replace("_", "-")
            raise ConfigError(f"{flag} must be a finite number, got {value}")
MAPPINGS = ("fc", "conv")
PADDINGS = ("zeros", "circular")


@dataclass
class ModelConfig:
    """The Tagger network: TAG loop, parametric mapping (Ladder) and input likelihood.

    Attributes:
        input_size: D, elements per example (400 for Shapes, 784 for TextureMNIST).
        groups: K, groups used in training.
        iterations: T, TAG iterations used in training.
        widths: the Ladder's ``encoder_proj`` (H0, H1, ..., HL); H0 is the width of the
            first (TAG-owned) projection, the rest are the Ladder's fully connected layers.
        norm: ``"batch"`` (the reference code: statistics over groups and batch, also at
            evaluation) or ``"layer"`` (per group and example over units; the paper's best).
        likelihood: ``"binary"`` (bit-flip noise) or ``"continuous"`` (Gaussian noise).
        noise: bit-flip probability (binary) or noise standard deviation (continuous).
        z0: initial reconstruction, the data mean (0.26 Shapes, 0.5 TextureMNIST).
        v_init: continuous data: the learned variance's starting value (None = the reference's
            raw 1, i.e. v = 2.41). A research knob, not a reference setting.
        v_param: how ``v`` is parameterised: ``"reference"`` (``a + sqrt(a^2+1)``, which Adam can
            only move by about ``lr`` in ``a`` per step: v falls like ``1 / (2 lr steps)``) or
            ``"fixed"`` (v stays at ``v_init``, not trained; the ``quick-fixed-v`` and spectrogram
            ``quick-logmag`` presets).
        channels: C, colour channels per pixel (inputs stored pixel-major, D = pixels * C).
            With C > 1 masks are per pixel, shared over its channels.
        image_shape: ``(H, W)`` or ``(H, W, C)`` of one example, where known: what
            :meth:`tagger.model.Tagger.segment` shapes the masks by (empty: flat masks).
        mapping: ``"fc"`` (the paper's fully connected Ladder, ``widths``) or ``"conv"`` (this
            project's convolutional Ladder, :mod:`tagger.conv_ladder`: ``conv_*`` fields; not in the paper).
        conv_channels: channels of each conv level, full resolution first.
        conv_strides: stride (1 or 2) of the conv into each level after the first.
        conv_kernel: odd kernel size of the convs.
        conv_padding: ``"zeros"`` or ``"circular"`` (exactly shift-equivariant; for tests and tori).
        conv_coords: two coordinate channels added to every group's input (a soft position embedding).
    """

    input_size: int = option(400, "D, elements per example (must match the data)")
    groups: int = option(4, "K, groups used in training")
    iterations: int = option(3, "T, TAG iterations in training")
    widths: tuple[int, ...] = option((2000, 1000, 500), "Ladder layer sizes, e.g. 2000-1000-500")
    norm: str = option("layer", "normalisation (batch = reference code, layer = paper's best)",
                       choices=("batch", "layer"))
    likelihood: str = option("binary", "input model (default: the dataset's; continuous Shapes is a diagnostic)",
                             choices=("binary", "continuous"))
    noise: float = option(0.2, "bit-flip probability (binary) or noise std (continuous)")
    z0: float = option(0.26, "initial reconstruction, the data mean")
    v_init: float | None = option(None, "continuous: starting value of the learned variance v (default: the "
                                        "reference's 2.41; with --init, replaces the pretrained v)")
    v_param: str = option("reference", "continuous: how v is parameterised: reference (a + sqrt(a^2+1)) or fixed "
                                       "(stays at --v-init)", choices=V_PARAMS)
    channels: int = option(1, "C, colour channels per pixel (D = pixels x C); C > 1: per-pixel masks")
    image_shape: tuple[int, ...] = option((), "(H, W) or (H, W, C) of an example (set by the preset or the data)",
                                          flag=None)
    mapping: str = option("fc", "fc: the paper's fully connected Ladder; conv: this project's convolutional "
                                "Ladder (not in the paper)", choices=MAPPINGS)
    conv_channels: tuple[int, ...] = option((32, 32, 64, 64), "conv mapping: channels per level, full "
                                                              "resolution first, e.g. 32-32-64-64")
    conv_strides: tuple[int, ...] = option((2, 1, 2), "conv mapping: stride (1 or 2) into each level after the "
                                                      "first, e.g. 2-1-2")
    conv_kernel: int = option(3, "conv mapping: kernel size (odd)")
    conv_padding: str = option("zeros", "conv mapping: padding (circular: exactly shift-equivariant)",
                               choices=PADDINGS)
    conv_coords: bool = option(False, "conv mapping: add two coordinate channels (a soft position embedding)")

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the offending flag."""
        check_finite(self)
        if self.input_size < 1:
            raise ConfigError(f"--input-size must be >= 1, got {self.input_size}")
        if self.groups < 1:
            raise ConfigError(f"--groups must be >= 1, got {self.groups}")
        if self.iterations < 1:
            raise ConfigError(f"--iterations must be >= 1, got {self.iterations}")
        if len(self.widths) < 2 or any(int(w) < 1 for w in self.widths):
            raise ConfigError(f"--widths needs >= 2 positive layer sizes, got {self.widths}")
        if self.norm not in ("batch", "layer"):
            raise ConfigError(f"--norm must be batch or layer, got {self.norm!r}")
        if self.likelihood not in ("binary", "continuous"):
            raise ConfigError(f"likelihood must be binary or continuous, got {self.likelihood!r}")
        if self.likelihood == "binary" and not 0.0 <= self.noise < 0.5:
            raise ConfigError(f"--noise (bit-flip probability) must be in [0, 0.5), got {self.noise}")
        if self.likelihood == "continuous" and not self.noise > 0.0:
            raise ConfigError(f"--noise (Gaussian std) must be > 0, got {self.noise}")
        if self.channels < 1 or self.input_size % self.channels:
            raise ConfigError(f"--channels must be >= 1 and divide the input size {self.input_size}, got {self.channels}")
        if self.v_param not in V_PARAMS:
            raise ConfigError(f"--v-param must be {' or '.join(V_PARAMS)}, got {self.v_param!r}")
        if self.v_init is not None and not self.v_init > 0.0:
            raise ConfigError(f"--v-init must be > 0, got {self.v_init}")
        if self.mapping not in MAPPINGS:
            raise ConfigError(f"--mapping must be {' or '.join(MAPPINGS)}, got {self.mapping!r}")
        if self.mapping == "conv":
            self.validate_conv()

    def validate_conv(self) -> None:
        """The conv mapping's fields; one-line :class:`ConfigError` each."""
        shape = tuple(self.image_shape)
        if len(shape) not in (2, 3) or math.prod(shape) != self.input_size or \
                (shape[2] if len(shape) == 3 else 1) != self.channels:
            raise ConfigError(f"--mapping conv needs the image shape (H, W[, C]) of the data to match --input-size "
                              f"{self.input_size} and --channels {self.channels}, got image_shape {shape} "
                              "(set by the dataset's presets)")
        if not self.conv_channels or any(int(c) < 1 for c in self.conv_channels):
            raise ConfigError(f"--conv-channels needs >= 1 positive channel counts, got {self.conv_channels}")
        if len(self.conv_strides) != len(self.conv_channels) - 1 or any(s not in (1, 2) for s in self.conv_strides):
            raise ConfigError(f"--conv-strides needs one stride (1 or 2) per level after the first "
                              f"({len(self.conv_channels) - 1}), got {self.conv_strides}")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ConfigError(f"--conv-kernel must be odd and >= 1, got {self.conv_kernel}")
        if self.conv_padding not in PADDINGS:
            raise ConfigError(f"--conv-padding must be {' or '.join(PADDINGS)}, got {self.conv_padding!r}")

DATASETS = ("shapes", "texture-mnist", "tetrominoes", "spectrograms", "spikes")
USER = "user"  # the dataset of a run on the user's own images (``--data PATH``)
PRECISIONS = ("fp32", "bf16", "auto")  # auto: resolved per device by tagger.training.device.resolve_precision


@dataclass
class TrainConfig:
    """How to train and validate.

    Attributes:
        dataset: one of :data:`DATASETS`.
        n_digits: digits per TextureMNIST image (1 or 2).
        active_bins: spectrograms: the input is the map of active bins (binary, Bernoulli input
            model) instead of the log magnitude (continuous). Chosen by the preset.
        epochs: passes over the training split.
        batch_size: examples per step.
        lr: Adam learning rate.
        lr_decay_from: where a linear decay of the learning rate to 0 starts, as a fraction of
            the run's steps (``epochs`` x steps per epoch): 1 = constant (the reference code),
            0 = decay over the whole run, 0.67 = the Ladder code's schedule. Set by the step
            count, not by ``max_minutes``, so a run is the same whatever stops it.
        seed: seeds weights, data order, noise and mask initialisation.
        eval_iterations: iterations reported at validation and evaluation (5 in Table 1).
        valid_examples: validation examples scored after each epoch (0 = the whole split).
        eval_batch_size: batch size at evaluation (matters for ``norm="batch"``; 100 in the
            reference).
        train_examples: use only the first N training examples (0 = all).
        checkpoint_every: also checkpoint every N steps (0 = only at epoch ends).
        checkpoint_minutes: checkpoint at an epoch's end only once this many minutes have passed
            since the last one (0 = every epoch). The last epoch, a time limit and a signal always
            write one. A paper-sized continuous checkpoint is ~350 MB (weights and Adam's moments):
            saving it after each of 150 short GPU epochs would add minutes to the run.
        max_minutes: stop training (after a checkpoint) once this wall time is spent (0 = no limit).
        deterministic: use torch's deterministic algorithms (slower on GPU; errors where an
            op has no deterministic version).
        precision: ``"fp32"`` (default; TF32 matmuls on GPU), ``"bf16"`` (autocast: matmuls in
            bfloat16, normalisation, likelihood and cost in float32) or ``"auto"`` (bf16 on a CPU
            with bf16 matrix instructions, AMX or AVX-512 BF16; fp32 elsewhere; Shapes ``quick``).
        class_cost: weight of the classification cost (0 = unsupervised; 0.1 in the paper's
            semi-supervised TextureMNIST runs). Needs a top layer of 11 units (10 digits + none).
        labeled: labelled training examples for the class cost, balanced over classes as the
            reference chose them (1000 in Table 2; 0 = every training example).
        permute_pixels: shuffle the pixel positions of every image (train, valid, test) by one
            fixed permutation drawn from this seed; -1 = none. Tagger's model is fully connected,
            so it should group permuted images as well as plain ones (the paper's claim).
        init_from: a run directory (or a shipped model's name) whose weights start this run where
            names and shapes match (the reference's ``--continue``: pretrained grouping, new top layers).
        data: your own images (``dataset = "user"``): a ``.npz``/``.npy`` file, a folder of images,
            an HDF5 file or a multi-object TFRecord file (:func:`tagger.datasets.from_path`).
        data_format: the TFRecord schema of ``data`` (``tetrominoes``, ``multi_dsprites``,
            ``objects_room``, ``clevr_with_masks``); empty for every other kind.
        data_sha256: the sha256 of ``data`` when the run started: a file changed since is refused.
        valid_data, valid_sha256: validation images from this file (and its digest) instead of a
            seeded hold-out of ``valid_fraction`` of ``data``.
        resize: ``(H, W)`` every image of ``data`` (and ``valid_data``) is resized to; empty = as stored.
    """

    dataset: str = option("shapes", "the dataset (chosen by the command's DATASET argument)", flag=None)
    n_digits: int = option(2, "TextureMNIST digits per image (chosen by --digits)", flag=None)
    active_bins: bool = option(False, "spectrograms: binary active-bin input (chosen by the preset)", flag=None)
    epochs: int = option(100, "passes over the training split")
    batch_size: int = option(100, "examples per step")
    lr: float = option(4e-4, "Adam learning rate")
    lr_decay_from: float = option(1.0, "start a linear decay of the learning rate to 0 at this fraction of the "
                                       "run's steps (1 = constant, the reference; 0 = over the whole run)",
                                  metavar="FRACTION")
    seed: int = option(10, "seeds weights, data order, noise and mask initialisation")
    eval_iterations: int = option(5, "iterations reported at validation")
    valid_examples: int = option(1000, "validation examples scored per epoch (0 = all)")
    eval_batch_size: int = option(100, "batch size at validation (matters for batch norm)")
    train_examples: int = option(0, "use the first N training examples (0 = all)")
    checkpoint_every: int = option(0, "also checkpoint every N steps")
    checkpoint_minutes: float = option(0.0, "checkpoint at epoch ends at most every M minutes (0 = every epoch)")
    max_minutes: float = option(0.0, "stop (with a checkpoint) after this much training time (0 = no limit)")
    deterministic: bool = option(False, "torch deterministic algorithms (bit-exact reruns; slower on GPU)")
    precision: str = option("fp32", "fp32 (TF32 matmuls on GPU), bf16 autocast of the matmuls, or auto: bf16 on "
                                    "a CPU with bf16 matrix instructions (AMX, AVX-512 BF16), fp32 elsewhere",
                            choices=PRECISIONS)
    class_cost: float = option(0.0, "weight of the classification cost (TextureMNIST; needs a top width of 11)")
    labeled: int = option(0, "labelled training examples, balanced by class (0 = all)")
    permute_pixels: int = option(-1, "shuffle every image's pixels by one fixed permutation drawn from this seed "
                                     "(-1 = none): the no-image-prior test", metavar="SEED")
    init_from: str = option("", "start from this run's (or shipped model's) weights where names and shapes "
                                "match (e.g. the pretrained grouping for --preset paper-semi)",
                            flag="init", metavar="RUN_DIR|NAME")
    data: str = option("", "train on your own images: an .npz / .npy file, a folder of images, an .h5 / .hdf5 "
                           "file or a multi-object TFRecord file (with --format); see docs/own-data.md",
                       metavar="PATH")
    data_format: str = option("", "the TFRecord schema of --data: tetrominoes, multi_dsprites, objects_room or "
                                  "clevr_with_masks", flag="format", metavar="NAME")
    data_sha256: str = option("", "the sha256 of --data (recorded when the run starts)", flag=None)
    valid_data: str = option("", "validation images from this file (default: a hold-out of --data)",
                             flag="valid", metavar="PATH")
    valid_sha256: str = option("", "the sha256 of --valid (recorded when the run starts)", flag=None)
    valid_fraction: float = option(0.1, "--data without --valid: the fraction held out for validation (seeded "
                                        "by --seed)", metavar="FRACTION")
    resize: tuple[int, ...] = option((), "--data: resize every image to HxW (e.g. 64x64)", metavar="HxW")

    @property
    def lr_decays(self) -> bool:
        """Whether the learning rate follows a schedule (``lr_decay_from < 1``) instead of staying constant."""
        return self.lr_decay_from < 1

    def data_kwargs(self) -> dict:
        """Keyword arguments of :func:`tagger.datasets.load` for this dataset (digits for TextureMNIST)."""
        extra = {"n_digits": self.n_digits} if self.dataset == "texture-mnist" else {}
        extra |= {"binary": self.active_bins} if self.dataset == "spectrograms" else {}
        return extra | ({"permute_pixels": self.permute_pixels} if self.permute_pixels >= 0 else {})

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the offending flag."""
        check_finite(self)
        checks = [
            (0 <= self.seed <= MAX_SEED, f"--seed must be in 0..{MAX_SEED}, got {self.seed}"),
            (self.dataset in DATASETS + (USER,), f"--dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}"),
            ((self.dataset == USER) == bool(self.data), "a run on your own images needs --data PATH, and --data "
                                                        "no built-in DATASET"),
            (not (self.valid_data or self.data_format or self.resize) or self.data,
             "--valid, --format and --resize apply to --data runs only"),
            (0 <= self.valid_fraction < 1, f"--valid-fraction must be in [0, 1), got {self.valid_fraction}"),
            (not self.resize or (len(self.resize) == 2 and min(self.resize) >= 1),
             f"--resize must look like 64x64, got {'x'.join(map(str, self.resize))}"),
            (self.n_digits in (1, 2), f"--digits must be 1 or 2, got {self.n_digits}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (0 <= self.lr_decay_from <= 1, f"--lr-decay-from must be in [0, 1], got {self.lr_decay_from}"),
            (self.eval_iterations >= 1, f"--eval-iterations must be >= 1, got {self.eval_iterations}"),
            (self.valid_examples >= 0, f"--valid-examples must be >= 0, got {self.valid_examples}"),
            (self.eval_batch_size >= 1, f"--eval-batch-size must be >= 1, got {self.eval_batch_size}"),
            (self.train_examples >= 0, f"--train-examples must be >= 0, got {self.train_examples}"),
            (self.checkpoint_every >= 0, f"--checkpoint-every must be >= 0, got {self.checkpoint_every}"),
            (self.checkpoint_minutes >= 0, f"--checkpoint-minutes must be >= 0, got {self.checkpoint_minutes}"),
            (self.max_minutes >= 0, f"--max-minutes must be >= 0, got {self.max_minutes}"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.class_cost >= 0, f"--class-cost must be >= 0, got {self.class_cost}"),
            (self.labeled >= 0, f"--labeled must be >= 0, got {self.labeled}"),
            (self.permute_pixels >= -1, f"--permute-pixels must be a seed >= 0 (or -1: none), got {self.permute_pixels}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)


@dataclass
class Config:
    """A whole run: the preset it started from, the model and the training settings."""

    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "Config":
        self.model.validate()
        self.train.validate()
        if self.train.dataset == "spectrograms" and self.train.active_bins != (self.model.likelihood == "binary"):
            raise ConfigError("spectrograms: the active-bin input needs the binary likelihood and the log "
                              "magnitude the continuous one; choose the preset that says which")
        if self.train.class_cost > 0:
            if self.model.mapping != "fc":
                raise ConfigError("--class-cost needs --mapping fc (the conv mapping has no class read-out)")
            if self.train.dataset != "texture-mnist":
                raise ConfigError("--class-cost needs labels: only texture-mnist has them")
            if self.model.widths[-1] != CLASSES + 1:
                raise ConfigError(f"--class-cost needs a top layer of {CLASSES + 1} units (10 digits + none), "
                                  f"got --widths {'-'.join(map(str, self.model.widths))}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        try:
            data = {**data, "model": without_removed(data["model"], "model"),
                    "train": without_removed(data["train"], "train")}
            model = dict(data["model"])
            model["widths"] = tuple(int(w) for w in model["widths"])
            for key in ("image_shape", "conv_channels", "conv_strides"):  # JSON lists back to tuples
                if key in model:
                    model[key] = tuple(int(value) for value in model[key])
            if "resize" in data["train"]:
                data["train"] = {**data["train"], "resize": tuple(int(v) for v in data["train"]["resize"])}
            return cls(preset=data.get("preset", "custom"), model=ModelConfig(**model),
                       train=TrainConfig(**data["train"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"not a tagger config: {error}") from None

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Config":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: cannot read config ({error})") from None


CLASSES = 10  # MNIST digits

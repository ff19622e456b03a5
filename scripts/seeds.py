"""Table 1 as the paper reports it: the median over seeds (the paper used 20).

    python scripts/seeds.py --seeds 10-29 --out runs/seeds-ln -- shapes --preset paper --compile graph

Trains one run per seed (``tagger train ARGS --seed S --run-dir OUT/seedS``), evaluates each on
the test split (``tagger eval``, 5 iterations), prints the median AMI and denoising cost per
iteration with their range, and writes ``OUT/summary.json``. Interrupted sweeps continue:
evaluated seeds are skipped and a seed with a checkpoint (or its checkpoint.old fallback) but no
evaluation is resumed; a seed folder with other run files but no checkpoint is refused by
``tagger train``, never cleaned.
"""
import argparse
import json
import sys
from pathlib import Path

from tagger.cli import main as tagger
from tagger.cli.baselines import seed_list
from tagger.evaluate import format_table, median_over_runs
from tagger.files import write_text_atomically
from tagger.training.rundir import holds_checkpoint


def run_seed(seed: int, out: Path, train_args: list[str], eval_args: list[str]) -> dict:
    run_dir = out / f"seed{seed}"
    result_path = run_dir / "eval_test.json"
    if not result_path.exists():
        if holds_checkpoint(run_dir):
            status = tagger(["train", "--resume", str(run_dir)])
        else:
            status = tagger(["train", *train_args, "--seed", str(seed), "--run-dir", str(run_dir)])
        if status != 0 or tagger(["eval", str(run_dir), "--output", str(result_path), *eval_args]) != 0:
            sys.exit(f"seeds: seed {seed} failed (see above); rerun the same command to continue")
    return json.loads(result_path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=seed_list, default=seed_list("10-29"), help="e.g. 10-29 or 1,2,3")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs and summary.json")
    parser.add_argument("--eval", default="", help="extra flags for tagger eval, e.g. '--examples 2000'")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then tagger train's arguments")
    args = parser.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    results = [run_seed(seed, args.out, train_args, args.eval.split()) for seed in args.seeds]
    summary = median_over_runs(results)
    summary["seeds"] = args.seeds
    write_text_atomically(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(format_table(summary, f"median over {len(results)} seeds ({args.seeds[0]}..{args.seeds[-1]})"))
    print("| AMI range | " + " | ".join(f"{a:.3f}-{b:.3f}" for a, b in zip(summary["ami_min"], summary["ami_max"])) + " |")
    print(f"written {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()

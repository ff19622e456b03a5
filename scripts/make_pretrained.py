"""Turn a finished run into a shipped pretrained model: tagger/pretrained/NAME/ (fp16 export + card).

    python scripts/make_pretrained.py shapes-quick runs/shapes-quick-40 \
        --command "tagger train shapes --preset quick --precision fp32 --lr-decay-from 1 --epochs 40 --compile inductor" \
        --machine "2-core AMD EPYC, torch 2.13.0+cpu"

The card's scores are measured on the exported fp16 weights (what users load): the whole test
split, and the first --check-examples test images, which tests/test_pretrained.py re-scores.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger import datasets  # noqa: E402
from tagger.checkpoint import load_model, read_checkpoint  # noqa: E402
from tagger.evaluate import evaluate  # noqa: E402
from tagger.export import export_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "tagger" / "pretrained"


def scores(model, split, examples: int, iterations: int) -> dict:
    x = torch.as_tensor(split.features[:examples])  # (N, D)
    objects = torch.as_tensor(split.objects[:examples].astype("int64"))
    result = evaluate(model, x, objects, iterations=iterations, batch_size=100, seed=0)
    keep = ("ami", "ari", "denoising_cost")
    return {"examples": int(x.shape[0]), "iterations": iterations, "batch_size": 100, "seed": 0,
            **{key: [round(float(v), 6) for v in result[key]] for key in keep}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--machine", required=True)
    parser.add_argument("--check-examples", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    config, state, _, _ = read_checkpoint(args.run_dir)
    folder = ROOT / args.name
    export_run(args.run_dir, folder, dtype="fp16", piece_mib=15)
    model = load_model(folder)
    data = config.train.data_kwargs()  # e.g. {"n_digits": 2}: the card keeps what the card test loads with
    split = datasets.load(config.train.dataset, "test", **data)
    card = {"name": args.name, "dataset": config.train.dataset, "data": data,
            "preset": config.preset,
            "model": {"widths": list(config.model.widths), "norm": config.model.norm, "groups": config.model.groups,
                      "iterations": config.model.iterations, "parameters": sum(p.numel() for p in model.parameters())},
            "command": args.command, "machine": args.machine, "date": datetime.date.today().isoformat(),
            "epochs": state["epoch"], "steps": state["step"], "seed": config.train.seed, "dtype": "fp16",
            "test": scores(model, split, len(split), args.iterations),
            "check": scores(model, split, args.check_examples, args.iterations)}
    (folder / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({key: card[key] for key in ("name", "epochs", "test")}, indent=1))


if __name__ == "__main__":
    main()

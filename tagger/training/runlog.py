"""A run's log: epoch rows appended to ``metrics.csv`` and TensorBoard (``tb/``); shared by
Tagger's training, the baselines and Reconstruction Clustering."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..files import write_text_atomically
from .output import safe_stream


# TensorBoard's "Custom Scalars" tab: every iteration's validation curve in one chart per metric,
# so one sees live whether later iterations keep improving on the earlier ones (tags valid_ami_1 ..).
PER_ITERATION = {"validation, per iteration": {
    "AMI": ["Multiline", [r"^valid_ami_\d+$"]],
    "FG-ARI": ["Multiline", [r"^valid_ari_\d+$"]],
    "denoising cost": ["Multiline", [r"^valid_cost_\d+$"]],
}}


class RunLog:
    """Appends epoch rows to ``metrics.csv`` and TensorBoard (``tb/``)."""

    def __init__(self, run_dir: Path, history: list[dict] = (), enabled: bool = True, echo: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.echo = echo  # print a summary line per epoch
        self.run_dir = Path(run_dir)
        self.writer = None
        self.enabled = enabled
        if not enabled:
            return
        # rewritten from the checkpoint's history (exact on resume), in one atomic replace: the old
        # file stays whole until the new one is complete
        if history:
            write_text_atomically(self.path, self.csv_text(history))
        else:
            self.path.unlink(missing_ok=True)

    @staticmethod
    def csv_text(rows) -> str:
        """Rows as appended one by one: a header before the first, each row with its own keys."""
        text = io.StringIO()
        for index, row in enumerate(rows):
            writer = csv.DictWriter(text, fieldnames=list(row), lineterminator="\r\n")
            if index == 0:
                writer.writeheader()
            writer.writerow(row)
        return text.getvalue()

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tb"))
            self.writer.add_custom_scalars(PER_ITERATION)
        except Exception:  # tensorboard missing or broken: CSV is enough
            self.writer = None
        return self

    def image(self, tag: str, png, epoch: int) -> None:
        """A PNG (a buffer, e.g. :func:`tagger.visualize.grouping_figure`'s) as a TensorBoard image."""
        if self.writer is None:
            return
        from matplotlib.image import imread

        png.seek(0)
        self.writer.add_image(tag, imread(png, format="png")[..., :3], epoch, dataformats="HWC")  # drop alpha
        self.writer.flush()

    def write_row(self, row: dict) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def __call__(self, row: dict) -> None:
        if not self.enabled:
            return
        self.write_row(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
        if not self.echo:
            return
        summary = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                           if k in ("epoch", "train_cost", "class_cost", "valid_class_error") or k.startswith("valid_ami"))
        tqdm.write(summary, file=safe_stream(sys.stdout))  # a closed stdout does not stop the run

    def __exit__(self, *exc):
        if self.writer is not None:
            self.writer.close()

"""``tagger report``: one self-contained HTML page of a run, or of several side by side.

Everything a reader needs about a run on one page that opens offline: the config, the
training curves (metrics.csv), Table 1a, the Figure-4 groupings ranked by AMI, a group-removal
example and the generalisation grid of ``tagger probe``. Figures are PNGs embedded as data:
URIs and the CSS is inline, so the file can be mailed or archived alone. The numbers and
figures come from the existing machinery (``tagger eval`` / ``tagger show`` in
:mod:`tagger.cli.inspect`, ``tagger probe``); this module only assembles them.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import html
import io
import json
import re
import tempfile
from pathlib import Path

from ..errors import ConfigError, DataError, UserError
from ..files import write_atomically
from .inspect import EvalOptions, _run_dir_of, evaluate_run, show_run

CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;
border-bottom:1px solid #ccc}h3{font-size:1em}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}img{max-width:100%}
pre{background:#f7f7f7;padding:.5em;font-size:.75em;max-height:24em;overflow:auto}.note{color:#777;font-size:.85em}
.runs{display:flex;gap:1.5em;align-items:flex-start;overflow-x:auto}.run{flex:1;min-width:28em}"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{_data_uri(png)}" alt="{html.escape(alt)}">'


def markdown_table(text: str) -> str:
    """The Markdown this package writes (pipe tables, paragraphs, ``**bold**``) as HTML."""
    out, rows = [], []

    def inline(s: str) -> str:
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(s.strip()))

    def flush():
        if rows:
            head, body = rows[0], rows[1:]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</table>")
            rows.clear()
    for line in text.splitlines():
        if line.startswith("|"):
            if not set(line) <= set("|-: "):  # not the rule under the header
                rows.append(line.strip().strip("|").split("|"))
            continue
        flush()
        if line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


class DamagedFile(DataError):
    """A file of the run that the page needs cannot be read: one line naming it, exit 2 (not a
    note on the page, which would hide it)."""


@contextlib.contextmanager
def _reading(path: Path):
    """Errors from parsing ``path`` (bad JSON or CSV, a missing key, a wrong type) as one
    :class:`DamagedFile` line naming it."""
    try:
        yield
    except UserError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, csv.Error) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        kind = "missing " + reason if isinstance(error, KeyError) else reason
        raise DamagedFile(f"{path}: damaged or not written by tagger ({kind[:160]}); "
                          "rewrite or remove it") from None


def _read_json(path: Path) -> dict:
    with _reading(path):
        value = json.loads(Path(path).read_bytes().decode("utf-8"))
        if not isinstance(value, dict):
            raise TypeError(f"a JSON {type(value).__name__}, not an object")
        return value


def read_metrics(run_dir: Path) -> list[dict]:
    """metrics.csv as rows of floats (missing values: None); a damaged file is one line naming it."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with _reading(path), open(path, newline="", encoding="utf-8") as handle:
        rows = [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(handle)]
        for row in rows:
            if None in row or row.get("epoch") is None:  # cells beyond the header, or no epoch
                raise ValueError(f"row {rows.index(row) + 2} has no epoch or more cells than the header")
        return rows


def _iteration_columns(rows: list[dict], prefix: str) -> list[str]:
    """``valid_ami_1 .. valid_ami_T`` in iteration order (absent in old runs for FG-ARI)."""
    names = [k for k in rows[0] if re.fullmatch(re.escape(prefix) + r"\d+", k)] if rows else []
    return sorted(names, key=lambda k: int(k[len(prefix):]))


def curves_png(runs: dict[str, list[dict]]) -> bytes | None:
    """Train cost, validation AMI / FG-ARI and v over epochs. One run: a line per iteration;
    several: the last iteration of each run, overlaid."""
    from ..visualize import pyplot

    plt = pyplot()
    panels = [(key, title) for key, title in (("train_cost", "train cost"), ("valid_ami_", "valid AMI"),
                                              ("valid_ari_", "valid FG-ARI"), ("v", "v (input variance)"))
              if any(_iteration_columns(rows, key) if key.endswith("_") else rows and key in rows[0]
                     for rows in runs.values())]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for axis, (key, title) in zip(axes[0], panels):
        for name, rows in runs.items():
            epochs = [row["epoch"] for row in rows]
            columns = _iteration_columns(rows, key) if key.endswith("_") else [key] * (bool(rows) and key in rows[0])
            for column in columns if len(runs) == 1 else columns[-1:]:
                label = f"iter {column[len(key):]}" if len(runs) == 1 and key.endswith("_") else name
                axis.plot(epochs, [row[column] for row in rows], marker="." if len(epochs) < 20 else None, label=label)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
        if axis.get_legend_handles_labels()[0] and (len(runs) > 1 or key.endswith("_")):
            axis.legend(fontsize=6)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _config(run_dir: Path) -> dict:
    from ..checkpoint import read_checkpoint

    path = run_dir / "config.json"
    if not path.exists():
        return read_checkpoint(run_dir)[0].to_dict()
    config = _read_json(path)
    with _reading(path):
        if not isinstance(config["preset"], str) or not isinstance(config["train"]["dataset"], str):
            raise TypeError("preset and train.dataset must be strings")
    return config


def _saved_eval(run_dir: Path) -> Path | None:
    """What ``tagger eval`` wrote for the test split: the full one (``eval_test.json``), else the
    one on the most examples (``eval_test_nN.json``)."""
    if (run_dir / "eval_test.json").exists():
        return run_dir / "eval_test.json"
    subsets = [(int(match.group(1)), path) for path in run_dir.glob("eval_test_n*.json")
               if (match := re.fullmatch(r"eval_test_n(\d+)\.json", path.name))]
    return max(subsets)[1] if subsets else None


def _table1a(run_dir: Path, options: EvalOptions) -> tuple[dict, str]:
    """Table 1a from what ``tagger eval`` saved for the test split, else computed on a slice."""
    from ..evaluate import format_table

    saved = _saved_eval(run_dir)
    if saved is not None:
        result = _read_json(saved)
        with _reading(saved):  # what the page and the comparison table read of it
            format_table(result), int(result["groups"]), int(result["examples"])
            [float(result[key][-1]) for key in ("ami", "ari") if key in result]
        return result, f"from {saved.name}"
    result = evaluate_run(options.replace(output=options.output / "eval.json"))
    return result, f"computed for this page on the first {result['examples']} test examples"


def _figures(run_dir: Path, options: EvalOptions) -> list[tuple[str, bytes]]:
    """The Figure-4 groupings (examples spread over the AMI ranking, best first) and group 0
    removed in the last iteration (Figure 4b), both drawn by ``tagger show``."""
    ranked = options.replace(examples=5, order="ami", pool=options.examples, output=options.output / "ranked.png")
    removal = options.replace(examples=2, remove_group=[0], output=options.output / "removal.png")
    show_run(ranked)
    show_run(removal)
    return [(f"Groupings of 5 test examples spread over the AMI ranking of {options.examples}, best first "
             "(as the paper's Figure 4)", ranked.output.read_bytes()),
            ("Group 0 removed in the last iteration: the other groups explain the input without it "
             "(the paper's Figure 4b)", removal.output.read_bytes())]


def _guarded(title: str, build) -> str:
    """One section; a run that cannot give it (e.g. no MNIST for a TextureMNIST run) gets a note."""
    try:
        return build()
    except DamagedFile:
        raise
    except (UserError, OSError) as error:
        return f'<p class="note">{html.escape(title)} not available: {html.escape(str(error).splitlines()[0])}</p>'


def run_section(run_dir: Path, options: EvalOptions, results: dict) -> str:
    """One run's column: config, curves, Table 1a, figures, generalisation grid."""
    from ..evaluate import format_table
    from .probe import format_probe

    parts = [f"<h2>{html.escape(str(run_dir))}</h2>", '<h3 id="config">Config</h3>',
             _guarded("config", lambda: f"<pre>{html.escape(json.dumps(_config(run_dir), indent=1))}</pre>")]
    curves = curves_png({run_dir.name: read_metrics(run_dir)})
    parts += ['<h3 id="curves">Training curves</h3>',
              _img(curves, "training curves") if curves else '<p class="note">no metrics.csv</p>']

    def table():
        result, source = _table1a(run_dir, options)
        results[run_dir] = result
        return markdown_table(format_table(result)) + f'<p class="note">Test split, K={result["groups"]}, ' \
            f'{result["examples"]} examples; {html.escape(source)}.</p>'

    parts += ['<h3 id="table1a">Table 1a: denoising cost, AMI and FG-ARI per iteration</h3>', _guarded("Table 1a", table)]
    parts.append('<h3 id="groupings">Groupings</h3>')
    parts.append(_guarded("The grouping figure", lambda: "".join(
        f"<figure>{_img(png, caption)}<figcaption class=note>{html.escape(caption)}</figcaption></figure>"
        for caption, png in _figures(run_dir, options))))
    probe = run_dir / "probe.json"
    parts.append('<h3 id="probe">Generalisation (tagger probe)</h3>')
    if probe.exists():
        grid = _read_json(probe)
        with _reading(probe):
            parts.append(markdown_table(format_probe(grid)))
    else:
        parts.append(f'<p class="note">no probe.json: run <code>tagger probe {html.escape(str(run_dir))}</code> '
                     "(Shapes runs)</p>")
    return f'<div class="run">{"".join(parts)}</div>'


def summary_table(run_dirs: list[Path], results: dict) -> str:
    """Several runs: their final numbers in one table."""
    lines = ["| run | preset | dataset | epochs | train cost | valid AMI | valid FG-ARI | test AMI | test FG-ARI |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run_dir in run_dirs:
        rows, config, result = read_metrics(run_dir), _config(run_dir), results.get(run_dir, {})
        last = rows[-1] if rows else {}
        value = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        valid = [last.get(c[-1]) if c else None for c in (_iteration_columns(rows, "valid_ami_"),
                                                           _iteration_columns(rows, "valid_ari_"))]
        test = [result[key][-1] if key in result else None for key in ("ami", "ari")]
        lines.append(f"| {run_dir.name} | {config['preset']} | {config['train']['dataset']} | "
                     f"{int(last['epoch']) if last else 0} | {value(last.get('train_cost'))} | "
                     + " | ".join(map(value, valid + test)) + " |")
    return markdown_table("\n".join(lines)) + '<p class="note">Valid: the last epoch\'s last iteration; ' \
        "test: Table 1a's last iteration.</p>"


def build_report(run_dirs: list[Path], output: Path | None = None, examples: int = 500, device: str = "auto",
                 data_dir: Path | None = None) -> Path:
    """Write the page for ``run_dirs`` to ``output`` (default: ``RUN_DIR/report.html`` for one
    run, ``report.html`` in the current directory for several)."""
    if examples < 5:
        raise ConfigError(f"--examples must be >= 5 (the figure shows 5 of them), got {examples}")
    run_dirs = [_run_dir_of(Path(d)) for d in run_dirs]
    output = output or (run_dirs[0] / "report.html" if len(run_dirs) == 1 else Path("report.html"))
    results: dict = {}
    # eval/show print what they write; here that is scratch files, so only the page is announced
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        sections = []
        for index, run_dir in enumerate(run_dirs):
            folder = Path(scratch) / str(index)
            folder.mkdir()
            # output: the scratch folder where this run's figures and computed Table 1a go
            options = EvalOptions(run_dir, examples=examples, device=device, data_dir=data_dir, output=folder)
            sections.append(run_section(run_dir, options, results))
    title = "Tagger report: " + ", ".join(d.name for d in run_dirs)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if len(run_dirs) > 1:
        curves = curves_png({d.name: read_metrics(d) for d in run_dirs})
        body += ['<h2 id="comparison">Comparison</h2>', summary_table(run_dirs, results)]
        body += [_img(curves, "training curves, overlaid")] if curves else []
    body.append(f'<div class="runs">{"".join(sections)}</div>')
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    output = Path(output)
    write_atomically(output, lambda target: Path(target).write_text(page, encoding="utf-8"))
    return output


def run_report(args: argparse.Namespace) -> int:
    output = build_report(args.run_dirs, args.output, args.examples, args.device, args.data_dir)
    print(f"written {output}")
    return 0

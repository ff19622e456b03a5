"""Command line: ``tagger train | eval | show | probe | report | export | bench | baseline | rc | demo | data``.
``tagger CMD --help`` explains each. Every command turns its flags into typed settings and calls
the library; a :class:`tagger.errors.UserError` (or an OS error) is one line and exit code 2.
Output goes through :func:`tagger.training.output.guarded_output`: a closed or full stdout/stderr
(``tagger eval RUN | head -1``, a dead log collector) loses the messages, not the work, and no
traceback is printed at exit."""
from __future__ import annotations

import os
import sys

from ..errors import UserError
from .parser import build_parser

USER_ERRORS = (UserError, OSError, MemoryError)


def _is_user_error(error: Exception) -> bool:
    """A user error, or memory the model's size asked for and the machine lacks (torch reports
    that as a RuntimeError subclass or a RuntimeError naming the allocator)."""
    if isinstance(error, USER_ERRORS):
        return True
    return type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def _command(name: str):
    """The function that runs command ``name`` on parsed arguments."""
    from . import baselines, inspect, probe, report, segment, train

    return {"train": train.run_train, "demo": train.run_demo, "data": train.run_data, "bench": train.run_bench,
            "eval": inspect.run_eval, "show": inspect.run_show, "export": inspect.run_export, "probe": probe.run_probe, "report": report.run_report,
            "segment": segment.run_segment,
            "baseline": baselines.run_baseline, "rc": baselines.run_rc}[name]


def _resolve_pretrained(args) -> None:
    """``--pretrained NAME``: a working copy of the shipped model stands in for RUN_DIR."""
    from ..pretrained import working_copy

    if hasattr(args, "run_dirs"):  # report: any mix of run directories and shipped models
        args.run_dirs = list(args.run_dirs) + [working_copy(name) for name in args.pretrained]
        if not args.run_dirs:
            raise UserError("give at least one RUN_DIR or --pretrained NAME")
        return
    if args.pretrained and args.run_dir is not None:
        raise UserError("give RUN_DIR or --pretrained NAME, not both")
    if args.pretrained:
        args.run_dir = working_copy(args.pretrained)
        print(f"pretrained model {args.pretrained} (card and outputs in {args.run_dir})")
    elif args.run_dir is None:
        raise UserError("give RUN_DIR (a run directory, checkpoint or export) or --pretrained NAME")


def main(argv: list[str] | None = None) -> int:
    from ..training.output import guarded_output

    with guarded_output():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "mnist_dir", None) is not None:  # the MNIST loader reads it from the environment
        os.environ["TAGGER_MNIST"] = str(args.mnist_dir)
    try:
        if hasattr(args, "pretrained"):
            _resolve_pretrained(args)
        return int(_command(args.command)(args) or 0)
    except KeyboardInterrupt as error:  # training's Interrupted says where its checkpoint is
        print(f"tagger: interrupted{': ' + str(error) if str(error) else ''}", file=sys.stderr)
        return getattr(error, "exit_code", 130)  # 128 + the signal's number
    except Exception as error:  # one line for users, traceback with --debug
        if args.debug:
            raise
        user = _is_user_error(error)
        kind = "error" if user else f"internal error ({type(error).__name__})"
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if user and not isinstance(error, (UserError, OSError)):
            message = f"out of memory ({message[:120]}); try smaller --widths or --batch-size"
        print(f"tagger: {kind}: {message}" + ("" if user else " (rerun with --debug)"), file=sys.stderr)
        return 2 if user else 1

"""Training Tagger: the loop (:mod:`.trainer`), the step strategies and objective (:mod:`.steps`),
typed state save/restore (:mod:`.state`), ``torchrun`` data parallelism (:mod:`.distributed`),
the labelled stream of semi-supervised runs (:mod:`.labeled`), the run log (:mod:`.runlog`) and
device and process settings (:mod:`.device`). Depends on the top level of :mod:`tagger`, never
the reverse."""
from .device import apply_process_settings, resolve_device
from .runlog import RunLog
from .run import train
from .trainer import Trainer

__all__ = ["train", "Trainer", "RunLog", "apply_process_settings", "resolve_device"]

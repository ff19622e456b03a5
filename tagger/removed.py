"""Options that were measured, not adopted and removed from the package (docs/notebook.md says
what each measured). A run directory written before may still name them in its config."""
from __future__ import annotations

from .errors import ConfigError

# Options measured, not adopted, and removed (docs/notebook.md names what each measured); commit
# d917291 has them all. A stored config may still hold them: at these values (where the option was
# off) they are dropped, anywhere else refused. None: any value (row_length only described the data).
REMOVED = {
    "model": {"pixel_noise": 0.0, "row_dropout": 0.0, "row_band": 1, "row_length": None, "mask_skip": False,
              "v_param": "log"},
    "train": {"same_colour": 0.0},
}
REMOVED_IN = "d917291"


def without_removed(section: dict, name: str) -> dict:
    """``section`` of a stored config without the keys of removed options (one line where one was on)."""
    kept = dict(section)
    for key, off in REMOVED[name].items():
        if key == "v_param":  # the option stays; one of its values went
            if kept.get(key) == off:
                raise ConfigError(f"this run used --v-param log, removed after commit {REMOVED_IN} "
                                  "(check that commit out to load it)")
            continue
        if key in kept:
            value = kept.pop(key)
            if off is not None and value != off:
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"this run used {flag} {value}, an option removed after commit {REMOVED_IN} "
                                  "(check that commit out to load it)")
    return kept

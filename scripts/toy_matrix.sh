#!/usr/bin/env bash
# The toy comparison of docs/continuous.md: settings x seeds of scripts/toy_grouping.py, two
# single-thread streams side by side; one JSON line per run in ${OUT:-runs/toy}/results.jsonl.
set -euo pipefail
out=${OUT:-runs/toy}
steps=${STEPS:-1500}
mkdir -p "$out"
settings=(
  '"norm": "layer", "v_param": "reference", "v_init": null'
  '"norm": "layer", "v_param": "fixed", "v_init": 0.2'
  '"norm": "batch", "v_param": "fixed", "v_init": 0.2'
)
extra=(
  '"norm": "batch", "v_param": "fixed", "v_init": 0.1, "seed": 0'
  '"norm": "batch", "v_param": "fixed", "v_init": 0.5, "seed": 0'
)
runs=()
for s in "${settings[@]}"; do for seed in 0 1 2; do runs+=("{$s, \"seed\": $seed, \"steps\": $steps}"); done; done
for s in "${extra[@]}"; do runs+=("{$s, \"steps\": $steps}"); done
stream() {  # every second run, starting at $1
  for ((i = $1; i < ${#runs[@]}; i += 2)); do python scripts/toy_grouping.py "${runs[$i]}"; done
}
stream 0 >> "$out/results.jsonl" &
stream 1 >> "$out/results.jsonl"
wait
cat "$out/results.jsonl"

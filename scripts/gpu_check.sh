#!/usr/bin/env bash
# One prepared GPU run: CUDA tests, benchmarks, then fixed-time training runs on Shapes
# (paper preset, LayerNorm and BatchNorm) and TextureMNIST2, each evaluated on its test split.
# Logs and JSON go to $OUT (default ./gpu_out); a short table is printed last.
# Budgets (minutes) come from the environment so a CPU dry run can use tiny ones:
#   SHAPES_LN_MIN SHAPES_BN_MIN TEXTURE_MIN SEMI_MIN (default 3.5 1.5 2.0 2.0), DEVICE (default cuda)
# STAGES picks what runs (default "tests bench shapes-ln texture2 shapes-bn"; also "semi": the
# semi-supervised TextureMNIST2 stage started from runs/texture2; "baselines": Table 2's FC MLP, FC
# Ladder and ConvNet on TextureMNIST2 with 1,000 labels, BASELINE_MIN minutes each, default 1.5).
# COMPILE: graph (default) or fused.
set -uo pipefail
# The device tool returns at most 8 files from $OUT: everything is written to a temporary folder and packed
# into $OUT/results.tgz at the end, beside summary.log and the two figures.
FINAL=${OUT:-gpu_out}; mkdir -p "$FINAL"
OUT=$(mktemp -d)
pack() { tar czf "$FINAL/results.tgz" -C "$OUT" . ; cp "$OUT"/summary.log "$OUT"/*.png "$FINAL"/ 2>/dev/null; true; }
trap pack EXIT  # also packed after every step, in case the run is killed at its time limit
DEVICE=${DEVICE:-cuda}; COMPILE=${COMPILE:-graph}
SHAPES_LN_MIN=${SHAPES_LN_MIN:-3.5}; SHAPES_BN_MIN=${SHAPES_BN_MIN:-1.5}; TEXTURE_MIN=${TEXTURE_MIN:-2.0}
SEMI_MIN=${SEMI_MIN:-2.0}; BASELINE_MIN=${BASELINE_MIN:-1.5}; STAGES=${STAGES:-"tests bench shapes-ln texture2 shapes-bn"}
want() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
EVAL_EXAMPLES=${EVAL_EXAMPLES:-0}; BENCH_STEPS=${BENCH_STEPS:-50}
export PYTHONUNBUFFERED=1 TAGGER_DATA=${TAGGER_DATA:-$PWD/.carry/data}
PY=python3
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.log"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null; \
  $PY -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/machine.txt"
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD

if want tests; then
  log "tests (CUDA)"
  $PY -m pytest -q tests/test_fast.py tests/test_metrics.py 2>&1 | tail -5 | tee -a "$OUT/summary.log"
fi

if want bench; then
  log "benchmarks"
  for spec in "shapes paper off 100 fp32" "shapes paper graph 100 fp32" "shapes paper fused 100 fp32" \
              "shapes paper graph 100 bf16" "shapes paper graph 1000 fp32" "texture-mnist paper graph 100 fp32" \
              "texture-mnist paper fused 100 fp32"; do
    set -- $spec
    [ "$DEVICE" = cpu ] && { [ "$3" = graph ] || [ "$3" = fused ]; } && continue
    $PY -m tagger bench --dataset $1 --preset $2 --compile $3 --batch-size $4 --precision $5 --device $DEVICE \
        --steps $BENCH_STEPS --output "$OUT/bench_$1_$3_$4_$5.json" > "$OUT/benchout_$1_$3_$4_$5.txt" 2>&1 \
        || log "bench $spec FAILED"
    tail -1 "$OUT/benchout_$1_$3_$4_$5.txt" | tee -a "$OUT/bench.md"
  done
  pack
fi

train_eval() {  # name dataset preset minutes extra...
  local name=$1 dataset=$2 presetname=$3 minutes=$4; shift 4
  log "train $name ($minutes min)"
  timeout $(( ${minutes%.*} * 60 + 150 )) $PY -m tagger train $dataset --preset $presetname --device $DEVICE \
      --compile $COMPILE --epochs 1000 --max-minutes $minutes --run-dir "runs/$name" --no-progress "$@" \
      > "$OUT/train_$name.log" 2>&1 || log "train $name FAILED (see train_$name.log)"
  cp runs/$name/metrics.csv "$OUT/metrics_$name.csv" 2>/dev/null
  $PY -m tagger eval runs/$name --device $DEVICE --examples $EVAL_EXAMPLES --output "$OUT/eval_$name.json" \
      > "$OUT/evalout_$name.txt" 2>&1 || log "eval $name FAILED"
  tail -4 "$OUT/evalout_$name.txt" | tee -a "$OUT/summary.log"
  pack
}
if want shapes-ln; then
  train_eval shapes-ln shapes paper "$SHAPES_LN_MIN" --valid-examples 500
  $PY -m tagger show runs/shapes-ln --device $DEVICE --order ami --examples 6 --output "$OUT/shapes_ln_groupings.png" >/dev/null 2>&1
fi
if want texture2; then
  train_eval texture2 texture-mnist paper "$TEXTURE_MIN" --digits 2 --valid-examples 500
  $PY -m tagger show runs/texture2 --device $DEVICE --order ami --examples 6 --output "$OUT/texture2_groupings.png" >/dev/null 2>&1
fi
if want semi; then
  train_eval semi texture-mnist paper-semi "$SEMI_MIN" --digits 2 --valid-examples 500 --init runs/texture2
  $PY -m tagger show runs/semi --device $DEVICE --output "$OUT/semi_groupings.png" >/dev/null 2>&1
fi
want shapes-bn && train_eval shapes-bn shapes paper-bn "$SHAPES_BN_MIN" --valid-examples 500
if want baselines; then
  for model in mlp ladder convnet; do
    log "baseline $model (TextureMNIST2, 1k labels, $BASELINE_MIN min)"
    timeout $(( ${BASELINE_MIN%.*} * 60 + 200 )) $PY -m tagger baseline --model $model --digits 2 --labeled 1000 \
        --device $DEVICE --max-minutes $BASELINE_MIN --run-dir "runs/baseline-$model" --no-progress \
        > "$OUT/baseline_$model.log" 2>&1 || log "baseline $model FAILED"
    cp "runs/baseline-$model/result.json" "$OUT/baseline_$model.json" 2>/dev/null
    cp "runs/baseline-$model/metrics.csv" "$OUT/baseline_metrics_$model.csv" 2>/dev/null
    tail -1 "$OUT/baseline_$model.log" | tee -a "$OUT/summary.log"
  done
  pack
fi

log "summary"
cat "$OUT/bench.md" 2>/dev/null
for name in shapes-ln texture2 semi shapes-bn; do
  want $name || continue
  $PY - "$OUT" "$name" <<'PYEOF'
import csv, json, sys
out, name = sys.argv[1], sys.argv[2]
try:
    rows = list(csv.DictReader(open(f"{out}/metrics_{name}.csv")))
    ev = json.load(open(f"{out}/eval_{name}.json"))
    print(f"{name}: epochs {rows[-1]['epoch']} in {float(rows[-1]['elapsed_s']):.0f} s; test AMI",
          " ".join(f"{v:.3f}" for v in ev["ami"]), "| cost", " ".join(f"{v:.4f}" for v in ev["denoising_cost"]),
          "| class error %", " ".join(f"{v:.1f}" for v in ev.get("class_error", [])))
except Exception as error:
    print(f"{name}: no result ({error})")
PYEOF
done | tee -a "$OUT/summary.log"

#!/usr/bin/env bash
# One prepared GPU run, ordered by value: the paper's runs at full length, resumed across calls.
#   texture2   TextureMNIST2 `paper` pretraining, all 150 epochs (Table 2's first stage)
#   semi       TextureMNIST2 `paper-semi` from texture2, 50 epochs, 1,000 labels (Table 2's Tagger row)
#   shapes-ln  Shapes `paper` (LayerNorm), 100 epochs      shapes-bn  Shapes `paper-bn`, 100 epochs
#   tetrominoes  Tetrominoes `paper` (BatchNorm, 3000-2000-1000, the reference's v), TETROMINOES_EPOCHS
#              (default 150), FG-ARI in its evaluation, scored by masks and by the posterior
#   tetro-quick30  Tetrominoes `quick` (the CPU preset) for 30 epochs instead of 3: where it ends
#   spectrograms  sound mixtures, `large` (the Shapes `paper` network and recipe on the active-bin map), 100 epochs
#   spectro-noise03  the same with bit-flip 0.3 (the CPU study's best noise level for sound)
#   narrow2    TextureMNIST2 `quick-narrow` (the CPU study's recipe) for NARROW_EPOCHS (default 100): where it ends
#   tests      the CUDA tests                              bench      step benchmarks (graph, fused, bf16)
#   baselines  Table 2's FC MLP, FC Ladder and ConvNet on TextureMNIST2, 1,000 labels (BASELINE_MIN each)
# STAGES picks them; SIDE_STAGES (default none) run as a second chain beside them on the same GPU (small
# models leave most of it idle). With neither given, the pending job that best fits one sitting runs:
# STAGES=tetrominoes (the paper recipe on the field's benchmark) beside SIDE_STAGES=spectro-noise03,
# with PARTIAL=1. Table 2's row (texture2 then semi, ~17 minutes of H200 training) does not fit a
# 15-minute device allotment: STAGES="texture2 semi" where more is lent. Every training runs the
# preset's own epochs; this call stops CALL_SECONDS (default 540) after it started, leaving RESERVE_S
# (default 90) to evaluate and pack. A stage cut short keeps its checkpoint in runs/NAME, and the next
# call of this script on the same machine resumes it (`tagger train --resume`); a stage starts only
# after the ones before it are complete; with PARTIAL=1 a stage cut short is evaluated where it stopped
# (eval_partial.json, marked as such in the summary). A finished stage is evaluated on its whole test
# split and drawn.
# Data: TAGGER_DATA (default .carry/data; pass carry [".carry"]). Tetrominoes and spectrograms are made
# on the machine when missing (~1 min; carrying their caches, 28 MB, saves it); TextureMNIST needs MNIST,
# which the GPU machine lacks: carry its cache files.
# Everything goes to $OUT (default ./gpu_out): results.tgz (logs, metrics.csv per stage, eval JSON,
# figures) and summary.log, repacked every 20 s so a killed call still returns its metrics. Once
# texture2 is complete its weights also come back as fp16 pieces of <= 15 MiB in $OUT/texture2-fp16
# (`tagger export`), so a later GPU run can start semi from them: SEMI_INIT=DIR (default runs/texture2).
# DEVICE (default cuda), COMPILE (graph, or fused; a training that fails before its first checkpoint is
# retried with --compile off), EVAL_EXAMPLES (default 0 = whole test split).
# CPU dry run: DEVICE=cpu COMPILE=off CALL_SECONDS=150 RESERVE_S=30 EVAL_EXAMPLES=100 STAGES=texture2 \
#   EXTRA="--train-examples 200 --epochs 1 --valid-examples 100" TAGGER_DATA=~/.cache/tagger bash scripts/gpu_check.sh
set -uo pipefail
FINAL=${OUT:-gpu_out}; mkdir -p "$FINAL"
OUT=$(mktemp -d)  # at most 8 files come back: pack everything into one archive
START=$(date +%s); CALL_SECONDS=${CALL_SECONDS:-540}; RESERVE_S=${RESERVE_S:-90}
DEVICE=${DEVICE:-cuda}; COMPILE=${COMPILE:-graph}; EVAL_EXAMPLES=${EVAL_EXAMPLES:-0}; EXTRA=${EXTRA:-}
if [ -z "${STAGES+set}" ] && [ -z "${SIDE_STAGES+set}" ]; then STAGES=tetrominoes SIDE_STAGES=spectro-noise03 PARTIAL=${PARTIAL:-1}; fi
STAGES=${STAGES:-}; SIDE_STAGES=${SIDE_STAGES:-}; PARTIAL=${PARTIAL:-0}; SEMI_INIT=${SEMI_INIT:-runs/texture2}; BASELINE_MIN=${BASELINE_MIN:-1.5}; BENCH_STEPS=${BENCH_STEPS:-50}
export PYTHONUNBUFFERED=1 TAGGER_DATA=${TAGGER_DATA:-$PWD/.carry/data}
PY=python3
want() { case " $STAGES $SIDE_STAGES " in *" $1 "*) return 0;; esac; return 1; }
log() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.log"; }
pack() {
  for run in runs/*/; do
    local name; name=$(basename "$run")
    [ -f "$run/metrics.csv" ] && cp "$run/metrics.csv" "$OUT/metrics_$name.csv"
    for e in "$run"/eval_*.json; do [ -f "$e" ] && cp "$e" "$OUT/${name}_$(basename "$e")"; done
    [ -f "$run/groupings.png" ] && cp "$run/groupings.png" "$OUT/${name}_groupings.png"
  done
  local part; part=$(mktemp "$FINAL/.results.XXXXXX")  # two chains may pack at once
  tar czf "$part" -C "$OUT" . && mv "$part" "$FINAL/results.tgz"
  cp "$OUT"/summary.log "$FINAL"/ 2>/dev/null; true
}
( while sleep 20; do pack; done ) & PACKER=$!
trap 'kill $PACKER 2>/dev/null; pack' EXIT
minutes_left() { $PY -c "print(round(($START + $CALL_SECONDS - $RESERVE_S - $(date +%s)) / 60, 2))"; }
finished() {  # the run in $1 has trained all its epochs
  $PY - "$1" <<'PYEOF' 2>/dev/null
import json, sys
document = json.load(open(f"{sys.argv[1]}/checkpoint/state.json"))
sys.exit(0 if document["state"]["epoch"] >= document["config"]["train"]["epochs"] else 1)
PYEOF
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null; nproc; \
  $PY -c "import torch; print('torch', torch.__version__)"; } | tee "$OUT/machine.txt"
$PY -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH=$PWD

train_full() {  # name dataset preset flags...: train (or resume) runs/NAME; evaluate and draw it once complete
  local name=$1 dataset=$2 presetname=$3 run=runs/$1; shift 3
  if ! finished $run; then
    local left; left=$(minutes_left)
    if $PY -c "import sys; sys.exit(0 if $left >= 0.5 else 1)"; then
      local args=("$dataset" --preset "$presetname" --run-dir "$run" "$@" $EXTRA)
      [ -f $run/checkpoint/state.json ] && args=(--resume "$run")
      local compile
      for compile in $COMPILE off; do  # off: only if $COMPILE failed before the first checkpoint
        log "train $name (${args[*]}) with --compile $compile for up to $left min"
        $PY -m tagger train "${args[@]}" --device $DEVICE --compile $compile --max-minutes "$left" \
            --checkpoint-minutes 2 --no-progress >> "$OUT/train_$name.log" 2>&1 && break
        log "train $name stopped (rc $?)"
        [ ! -f $run/checkpoint/state.json ] && [ $compile != off ] || break
        left=$(minutes_left)
      done
    fi
  fi
  local result=eval_test
  if ! finished $run; then
    log "$name: not complete in this call; run this script again to resume it"
    [ "$PARTIAL" = 1 ] && [ -f $run/checkpoint/state.json ] || return 1
    result=eval_partial
  fi
  [ -f $run/$result.json ] && [ $result = eval_test ] && return 0  # evaluated by an earlier call
  evaluate $name $result
  [ $result = eval_test ]
}

evaluate() {  # name result: score runs/NAME on the test split (and by the posterior for colour scenes), draw it
  local name=$1 result=$2 run=runs/$1
  $PY -m tagger eval $run --device $DEVICE --examples $EVAL_EXAMPLES --output $run/$result.json \
      > "$OUT/evalout_$name.txt" 2>&1 || log "eval $name FAILED"
  tail -4 "$OUT/evalout_$name.txt" | tee -a "$OUT/summary.log"
  if grep -q '"dataset": "tetrominoes"' $run/checkpoint/state.json 2>/dev/null; then
    $PY -m tagger eval $run --device $DEVICE --examples $EVAL_EXAMPLES --assign posterior \
        --output $run/${result}_posterior.json > "$OUT/evalout_${name}_posterior.txt" 2>&1 || log "eval $name posterior FAILED"
    tail -2 "$OUT/evalout_${name}_posterior.txt" | tee -a "$OUT/summary.log"
  fi
  $PY -m tagger show $run --device $DEVICE --order ami --examples 6 --output $run/groupings.png >/dev/null 2>&1
  pack
}

if want tests; then
  log "tests (CUDA)"
  $PY -m pytest -q tests/test_fast.py tests/test_metrics.py 2>&1 | tail -5 | tee -a "$OUT/summary.log"
fi
if want bench; then
  log "benchmarks"
  for spec in "shapes graph 100 fp32" "shapes fused 100 fp32" "shapes graph 100 bf16" \
              "texture-mnist graph 100 fp32" "texture-mnist fused 100 fp32"; do
    set -- $spec
    $PY -m tagger bench --dataset $1 --preset paper --compile $2 --batch-size $3 --precision $4 --device $DEVICE \
        --steps $BENCH_STEPS --output "$OUT/bench_$1_$2_$3_$4.json" > "$OUT/benchout_$1_$2_$3_$4.txt" 2>&1 \
        || log "bench $spec FAILED"
    tail -1 "$OUT/benchout_$1_$2_$3_$4.txt" | tee -a "$OUT/bench.md"
  done
  pack
fi

stage() {  # one training stage by name
  case $1 in
    texture2) train_full texture2 texture-mnist paper --digits 2 --valid-examples 500 || return 1
      if [ ! -d "$FINAL/texture2-fp16" ]; then  # 58 MiB: 4 files that come back
        $PY -m tagger export runs/texture2 --output "$FINAL/texture2-fp16" --piece-mib 15 2>&1 | tee -a "$OUT/summary.log"
      fi ;;
    semi) train_full semi texture-mnist paper-semi --digits 2 --valid-examples 500 --init "$SEMI_INIT" ;;
    shapes-ln) train_full shapes-ln shapes paper --valid-examples 500 ;;
    shapes-bn) train_full shapes-bn shapes paper-bn --valid-examples 500 ;;
    tetrominoes) train_full tetrominoes tetrominoes paper --valid-examples 500 --epochs "${TETROMINOES_EPOCHS:-150}" ;;
    tetro-quick30) train_full tetro-quick30 tetrominoes quick --valid-examples 1000 --epochs 30 ;;
    spectrograms) train_full spectrograms spectrograms large --valid-examples 500 ;;
    spectro-noise03) train_full spectro-noise03 spectrograms large --noise 0.3 --valid-examples 500 ;;
    narrow2) train_full narrow2 texture-mnist quick-narrow --digits 2 --valid-examples 500 --epochs "${NARROW_EPOCHS:-100}" ;;
    tests|bench|baselines) ;;
    *) log "unknown stage $1"; return 1 ;;
  esac
}
chain() { for name in "$@"; do stage $name || return 1; done; }  # a later stage waits for the earlier ones
for name in $STAGES $SIDE_STAGES; do  # make each dataset once, before two chains could both make it
  case $name in tetro*) $PY -c "from tagger.datasets import tetrominoes as t; [t(s) for s in ('train', 'valid', 'test')]" ;;
    spectro*) $PY -c "from tagger.datasets.sound import spectrograms as t; [t(s) for s in ('train', 'valid', 'test')]" ;;
  esac
done 2>&1 | tail -2
chain $SIDE_STAGES & SIDE=$!
chain $STAGES
wait $SIDE
if want baselines; then
  for model in mlp ladder convnet; do
    log "baseline $model (TextureMNIST2, 1k labels, $BASELINE_MIN min)"
    $PY -m tagger baseline --model $model --digits 2 --labeled 1000 --device $DEVICE --max-minutes $BASELINE_MIN \
        --run-dir "runs/baseline-$model" --no-progress > "$OUT/baseline_$model.log" 2>&1 || log "baseline $model FAILED"
    cp "runs/baseline-$model/result.json" "$OUT/baseline_$model.json" 2>/dev/null
    tail -1 "$OUT/baseline_$model.log" | tee -a "$OUT/summary.log"
  done
fi

log "summary"
cat "$OUT/bench.md" 2>/dev/null
for run in runs/*/; do  # every stage this machine has trained, in this call or an earlier one
  name=$(basename "$run"); [ -f "$run/metrics.csv" ] || continue
  $PY - "$OUT" "$name" "$run/metrics.csv" <<'PYEOF'
import csv, json, sys
out, name, metrics = sys.argv[1:]
rows = list(csv.DictReader(open(metrics)))
last = rows[-1]
line = f"{name}: epoch {last['epoch']}, {float(last['elapsed_s']):.0f} s training; valid AMI/FG-ARI (last it.)"
its = sorted(int(k.rsplit("_", 1)[1]) for k in last if k.startswith("valid_ami_"))
if not its:  # a baseline's run directory: its result is printed above
    sys.exit(0)
line += f" {float(last[f'valid_ami_{its[-1]}']):.3f}/{float(last[f'valid_ari_{its[-1]}']):.3f}"
try:
    try:
        ev = json.load(open(metrics.replace("metrics.csv", "eval_test.json")))
        line += " | test"
    except OSError:
        ev = json.load(open(metrics.replace("metrics.csv", "eval_partial.json")))
        line += " | PARTIAL run, test"
    line += " AMI " + " ".join(f"{v:.3f}" for v in ev["ami"])
    if "ari" in ev:
        line += " | FG-ARI " + " ".join(f"{v:.3f}" for v in ev["ari"])
    if ev.get("class_error"):
        line += " | class error % " + " ".join(f"{v:.1f}" for v in ev["class_error"])
except OSError:
    line += " | no test evaluation (not complete)"
print(line)
PYEOF
done | tee -a "$OUT/summary.log"

#!/usr/bin/env bash
# One prepared GPU check of the engines, at most ~7 minutes on one GPU, each part in its own timeout.
#
#   bash scripts/gpu_check.sh                      # from the repo root; OUT=out/gpu by default
#   FIXTURES=/path/to/bevformer_reference OUT=out/gpu BUDGET=420 bash scripts/gpu_check.sh
#
# The fixtures (~25 MB) do not travel by themselves: before a device run, copy them into the
# ignored .gpu/ folder and carry it:
#   mkdir -p .gpu/fixtures && cp ../shared/fixtures/bevformer_reference/case_*.pt .gpu/fixtures/
#   run(command='OUT=$OUT bash scripts/gpu_check.sh', carry=['.gpu'], timeout_s=500)
# (models/bevformer_demo_small.pth is tracked, so it travels with the tree.)
#
# Needs only the GPU image's python3 (torch with CUDA; onnxruntime, Triton if there): the package
# runs from the checkout with PYTHONPATH=., nothing is installed. Parts, most important first:
#   env            GPU, torch/CUDA, onnxruntime providers, Triton, nuscenes-devkit
#   check_official the official fixtures on cuda (fp32 parity)
#   tiny, base     model time per backend, interleaved (bench_model --compare): eager fp32, eager
#                  fp16 (today's node), torch engine (folded BN, channels_last, static frame in
#                  one CUDA graph): fp32, fp16 backbone + fp32 head (torch:fp16:fp32), fp16 head
#                  (torch:fp16:fp16), bf16; speedup and max abs diff vs eager fp32
#   base_ops,      per-stage times and the 25 heaviest operators of one frame (eager, fp16
#   tiny_ops       autocast, bench_model --ops): where the base frame's time goes
#   fp16_accuracy  demo_small on a held-out synthetic scene rendered on the spot: recall, NDS/mAP
#                  (if nuscenes-devkit is there; else the results JSON are kept in OUT), max abs
#                  BEV diff and detection agreement of fp16 vs fp32 (scripts/precision_accuracy.py)
#   pipeline       node-free Pipeline (preprocess + model + postprocess), tiny and base, fp32/fp16
#   gpu_tests      the CUDA-only pytest tests (whole-frame graph, torchvision DCN), if pytest is
#                  installed
#   compile        last, <= 90 s: tiny with the static frame through torch.compile (Triton)
# (no onnxruntime part: the image's onnxruntime has the CPU provider only.)
# A part that fails or runs out of time is marked so and the next one starts; the summary table at
# the end lists them all. A device run brings back 8 files at most, so at the end every part's log
# goes into OUT/logs.tgz and the precision results JSONs into OUT/precision_accuracy.tgz (the loose
# copies are removed unless KEEP_LOGS=1); OUT/summary.txt stays.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
OUT=${OUT:-out/gpu}
BUDGET=${BUDGET:-420}  # seconds for all parts; the summary comes after
DEV=${DEVICE:-cuda}  # DEVICE=cpu only to try the script itself (slow, and nothing to measure)
mkdir -p "$OUT"
F=""
for d in "${FIXTURES:-}" .gpu/fixtures shared/fixtures/bevformer_reference \
         ../shared/fixtures/bevformer_reference; do
  if [ -n "$d" ] && [ -f "$d/case_small.pt" ]; then F=$d; break; fi
done
SUMMARY=()

# part NAME LIMIT_S COMMAND...: run with min(LIMIT_S, what is left of BUDGET), log, keep a summary.
part() {
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then
    SUMMARY+=("$(printf '%-15s %-12s %6s  %s' "$name" skipped - "out of the ${BUDGET} s budget")")
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (timeout ${limit} s, ${left} s of the budget left)"
  local start=$SECONDS
  timeout -k 5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$? status=ok
  [ $rc -ne 0 ] && status="FAIL rc=$rc"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status=TIMEOUT
  grep -v '^bench_model \[' "$OUT/$name.log" | tail -n 25
  [ "$status" != ok ] && echo "-- last lines of $OUT/$name.log:" && tail -n 6 "$OUT/$name.log"
  local note
  note=$(grep -E 'PASS|FAIL|not available|Error|error' "$OUT/$name.log" | grep -vc PASS)
  SUMMARY+=("$(printf '%-15s %-12s %5ss  %s' "$name" "$status" $((SECONDS - start)) \
    "$(tail -n 1 "$OUT/$name.log" | cut -c1-70) [problem lines: $note]")")
}

part env 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY - <<'PY'
import importlib, torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device',
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ('triton', 'torchvision', 'onnxruntime', 'openvino', 'tensorrt', 'nuscenes', 'numpy',
             'yaml'):
    try:
        mod = importlib.import_module(name)
        extra = mod.get_available_providers() if name == 'onnxruntime' else ''
        print(name, getattr(mod, '__version__', '?'), extra)
    except Exception as err:
        print(name, 'MISSING', type(err).__name__, err)
PY"

if [ -n "$F" ]; then
  part check_official 60 "$PY" -m bevformer_ros.tools.check_official "$F/case_small.pt" \
    "$F/case_dcn.pt" "$F/case_preprocess_tiny.pt" --device "$DEV"
else
  SUMMARY+=("$(printf '%-15s %-12s %6s  %s' check_official skipped - \
    'no fixtures: set FIXTURES to the folder with case_small.pt')")
fi

part tiny 75 "$PY" -m bevformer_ros.tools.bench_model --preset tiny --device "$DEV" --iters 30 \
  --warmup 3 --compare eager:fp32 eager:fp16 torch:fp32 torch:fp16:fp32 torch:fp16:fp16 \
  torch:bf16:fp32

part base 90 "$PY" -m bevformer_ros.tools.bench_model --preset base --device "$DEV" --iters 10 \
  --warmup 2 --compare eager:fp32 eager:fp16 torch:fp32 torch:fp16:fp32 torch:fp16:fp16

# where a frame's time goes (eager, fp16 autocast): the next optimisation's target
part base_ops 60 "$PY" -m bevformer_ros.tools.bench_model --preset base --device "$DEV" \
  --precision fp16 --iters 3 --warmup 2 --ops 25
part tiny_ops 45 "$PY" -m bevformer_ros.tools.bench_model --preset tiny --device "$DEV" \
  --precision fp16 --iters 5 --warmup 3 --ops 25

part fp16_accuracy 75 "$PY" scripts/precision_accuracy.py --device "$DEV" --frames 12 \
  --out "$OUT/precision_accuracy" eager:fp32 eager:fp16 torch:fp16:fp16 torch:bf16:fp32 \
  torch:fp16:fp32 torch:fp32

part pipeline 60 bash -c "$PY -m bevformer_ros.tools.bench_pipeline --preset tiny base \
  --device $DEV --frames 20 --warmup 3 && $PY -m bevformer_ros.tools.bench_pipeline \
  --preset tiny base --device $DEV --precision fp16 --frames 20 --warmup 3"

if [ -n "$F" ] && "$PY" -c 'import pytest' 2> /dev/null; then
  # the CUDA-only tests: whole-frame CUDA graph vs eager, torchvision DCN vs the port
  SH=$(mktemp -d) && mkdir -p "$SH/fixtures" && ln -s "$(cd "$F" && pwd)" \
    "$SH/fixtures/bevformer_reference"
  part gpu_tests 45 env BEVFORMER_SHARED="$SH" "$PY" -m pytest -q -p no:cacheprovider -rs \
    test/model/test_torch_engine.py test/model/test_dcn_torchvision.py -k 'cuda or torchvision'
else
  SUMMARY+=("$(printf '%-15s %-12s %6s  %s' gpu_tests skipped - 'no pytest or no fixtures')")
fi

part compile 90 "$PY" -m bevformer_ros.tools.bench_model --preset tiny --device "$DEV" --iters 30 \
  --warmup 3 --compare eager:fp32 torch:fp16:fp32 torch-compile:fp16:fp32

echo
echo "== tables"
for p in tiny base compile; do
  [ -f "$OUT/$p.log" ] && sed -n '/^bench_model --compare/,$p' "$OUT/$p.log"
done
for p in base_ops tiny_ops; do
  [ -f "$OUT/$p.log" ] && echo "-- $p" && sed -n '/^  stage /,$p' "$OUT/$p.log"
done
[ -f "$OUT/fp16_accuracy.log" ] && sed -n '/^precision_accuracy:/,$p' "$OUT/fp16_accuracy.log"
[ -f "$OUT/check_official.log" ] && grep -cE '\[PASS\]' "$OUT/check_official.log" \
  | sed 's/^/check_official PASS lines: /'
echo
echo "== summary (${SECONDS} s; logs in $OUT)"
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/summary.txt"
# pack for the trip back (8 files at most come back from a device run)
[ -d "$OUT/precision_accuracy" ] \
  && tar czf "$OUT/precision_accuracy.tgz" -C "$OUT" precision_accuracy
(cd "$OUT" && ls ./*.log > /dev/null 2>&1 && tar czf logs.tgz ./*.log)
if [ "${KEEP_LOGS:-0}" != 1 ]; then
  [ -f "$OUT/precision_accuracy.tgz" ] && rm -rf "$OUT/precision_accuracy"
  [ -f "$OUT/logs.tgz" ] && rm -f "$OUT"/*.log
fi
ls -l "$OUT"

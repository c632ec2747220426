#!/usr/bin/env bash
# The node end to end on the GPU machine (target: tiny <= 12 ms from image stamp to MarkerArray),
# where the image has torch but no ROS: the ROS Kilted wheels travel with the run.
#
#   bash scripts/gpu_node_check.sh --download      # here, once: the wheels into .whl/ (~45 MB)
#   run(command='OUT=$OUT bash scripts/gpu_node_check.sh', carry=['.whl'], timeout_s=300)
#
# (.whl/ is git-ignored; the fixtures of gpu_check.sh do not fit beside it in one run's 64 MiB,
# so this is its own run.) On the device: a venv of the image's python3 with the wheels installed
# and the image's own site-packages (torch, numpy, yaml) on a .pth behind them, then
# bevformer_bench_node for tiny at 6x1600x900 on cuda in fp16 and fp32 (each: the node's
# end-to-end median, its stage times, the bare forward), logs into OUT.
#
# DEVICE=cpu PRECISIONS='bf16 fp32' PRESETS=small-test tries the script itself on a CPU machine.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
WHEELS=.whl
PYVER=${PYVER:-3.12}  # the GPU image's Python

if [ "${1:-}" = --download ]; then
  # the ROS packages of the dev requirements and what they pull in, as the dev venv has them
  mapfile -t pkgs < <(grep -E '^ros-' requirements-dev.txt)
  deps=$("$PY" - "${pkgs[@]}" <<'PY'
import sys
from importlib.metadata import requires, version
from packaging.requirements import Requirement
seen, todo = {}, [Requirement(p).name for p in sys.argv[1:]]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen[name] = version(name)
    for req in map(Requirement, requires(name) or []):
        if req.name.startswith('ros-') and not (req.marker and 'extra' in str(req.marker)):
            todo.append(req.name)
print(' '.join(f'{k}=={v}' for k, v in sorted(seen.items())))
PY
)
  [ -n "$deps" ] || { echo "run --download with the dev venv's python (make setup)"; exit 2; }
  platforms=()
  for n in 17 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  # shellcheck disable=SC2086
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp "${platforms[@]}" --platform any -d "$WHEELS" $deps || exit 1
  du -sh "$WHEELS"
  exit 0
fi

OUT=${OUT:-out/gpu_node}
DEV=${DEVICE:-cuda}
RUN_S=${SECONDS_PER_RUN:-15}
mkdir -p "$OUT"
if ! "$PY" -c 'import rclpy' 2> /dev/null || [ "${FORCE_WHEELS:-0}" = 1 ]; then
  [ -d "$WHEELS" ] || { echo "no rclpy and no $WHEELS/: run --download here first"; exit 2; }
  VENV=/tmp/bevformer_rosvenv
  rm -rf "$VENV" && "$PY" -m venv "$VENV" || exit 1
  "$VENV/bin/python" -m pip install -q --no-index --no-deps --no-compile "$WHEELS"/*.whl || exit 1
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # behind the venv's own packages: the image's torch, numpy, yaml, psutil
  "$PY" -c 'import site; print("\n".join(site.getsitepackages()))' > "$site/image_site.pth"
  PY=$VENV/bin/python
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c 'import rclpy, torch; print("rclpy", rclpy.__file__, "torch", torch.__version__)' \
  | tee "$OUT/env.log"
status=0
for preset in ${PRESETS:-tiny}; do
  size=(--width 1600 --height 900)
  [ "$preset" = small-test ] && size=(--width 160 --height 90)
  for precision in ${PRECISIONS:-fp16 fp32}; do
    log="$OUT/node_${preset}_${precision}.log"
    echo "== $preset $precision on $DEV"
    timeout -k 5 $((RUN_S + 150)) "$PY" -m bevformer_ros.tools.bench_node --preset "$preset" \
      --device "$DEV" --precision "$precision" "${size[@]}" --rate 10 --seconds "$RUN_S" \
      > "$log" 2>&1 || status=1
    tail -n 8 "$log"
  done
done
exit $status

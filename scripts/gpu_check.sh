#!/usr/bin/env bash
# One prepared GPU check: check_official on cuda, bench_model and bench_pipeline for tiny/small/base.
# Usage: FIXTURES=../shared/fixtures/bevformer_reference OUT=out/gpu bash scripts/gpu_check.sh
# (on a GPU machine without ROS; needs only torch, numpy and pyyaml). Prints and saves every figure.
mkdir -p "${OUT:-out/gpu}"
export PYTHONUNBUFFERED=1
F=${FIXTURES:-.gpu/fixtures}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee ${OUT:-out/gpu}/gpu.txt
python3 -c "import torch, numpy, yaml; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy', numpy.__version__)" | tee -a ${OUT:-out/gpu}/gpu.txt
echo "== check_official cuda"; timeout 150 python3 -m bevformer_ros.tools.check_official $F/case_small.pt $F/case_dcn.pt $F/case_preprocess_tiny.pt --device cuda --json > ${OUT:-out/gpu}/check_official_cuda.jsonl 2>&1; echo "rc=$?" | tee -a ${OUT:-out/gpu}/check_official_cuda.jsonl
tail -c 3000 ${OUT:-out/gpu}/check_official_cuda.jsonl
for p in tiny small base; do for f in "" --fp16; do
  echo "== bench_model $p $f"
  timeout 100 python3 -m bevformer_ros.tools.bench_model --preset $p --device cuda $f --iters 20 --warmup 3 > ${OUT:-out/gpu}/bm_${p}${f}.txt 2>&1; echo "rc=$?" >> ${OUT:-out/gpu}/bm_${p}${f}.txt
done; done
cat ${OUT:-out/gpu}/bm_*.txt > ${OUT:-out/gpu}/bench_model.txt; rm ${OUT:-out/gpu}/bm_*.txt; cat ${OUT:-out/gpu}/bench_model.txt
echo "== bench_pipeline fp32"; timeout 150 python3 -m bevformer_ros.tools.bench_pipeline --preset tiny small base --device cuda --frames 30 --warmup 3 > ${OUT:-out/gpu}/bench_pipeline.txt 2>&1; echo "rc=$?" >> ${OUT:-out/gpu}/bench_pipeline.txt
echo "== bench_pipeline fp16"; timeout 120 python3 -m bevformer_ros.tools.bench_pipeline --preset tiny small base --device cuda --fp16 --frames 30 --warmup 3 >> ${OUT:-out/gpu}/bench_pipeline.txt 2>&1; echo "rc=$?" >> ${OUT:-out/gpu}/bench_pipeline.txt
cat ${OUT:-out/gpu}/bench_pipeline.txt

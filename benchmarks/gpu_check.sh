#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (torch, torchvision, timm; no Ray):
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. training step, rsearch vs timm, bf16 + channels_last, eager     (benchmarks/model_step.py)
# 2. end-to-end step fed by the real input pipeline vs synthetic tensors (benchmarks/input_pipeline.py --e2e)
# 3. inference latency of ResNet-RS-50 @160 with its method            (rsearch cost --latency)
# 4. training step with torch.compile                                  (benchmarks/model_step.py --compile)
# 5. the paper's table 3: RS-350 @256 vs B6 @528, RS-420 @320 vs B7 @600  (benchmarks/family_step.py)
set -u
OUT=${1:-${OUT:-gpu_out}}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 RSEARCH_CACHE=/tmp/rsearch-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)" | tee -a "$OUT/gpu.txt"
timeout 120 python3 benchmarks/model_step.py --device cuda --dtype bfloat16 --channels-last --rounds 5 \
    --json "$OUT/step_eager.json" 2>&1 | tail -8
timeout 200 python3 benchmarks/input_pipeline.py --e2e --device cuda --model resnetrs-50 --resolution 160 \
    --batch 256 --dtype bfloat16 --channels-last --workers 14 --json "$OUT/e2e_synth.json" 2>&1 | tail -8
timeout 60 python3 -m rsearch cost --model resnetrs-50 --resolution 160 --latency --device cuda \
    --dtype bfloat16 --batch 1,128 --no-cache --json > "$OUT/latency.json" 2> "$OUT/latency.err"; tail -c 600 "$OUT/latency.json"
timeout 220 python3 benchmarks/model_step.py --device cuda --dtype bfloat16 --channels-last --compile \
    --rounds 3 --json "$OUT/step_compile.json" 2>&1 | tail -8
timeout 300 python3 benchmarks/family_step.py --device cuda --json "$OUT/family_step.json" 2>&1 | tail -10

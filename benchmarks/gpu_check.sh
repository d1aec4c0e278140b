#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (torch, torchvision, timm; no Ray):
#   bash benchmarks/gpu_check.sh OUTDIR [CHECK ...]      (default: every check, in this order)
# A lent machine allows 10 minutes a command: run the checks in calls whose timeouts add up
# to less, most important first:
#   bash benchmarks/gpu_check.sh $OUT jpeg-prepare graph train-check    (issue 15, <= 560 s)
#   bash benchmarks/gpu_check.sh $OUT jpeg-device jpeg-cpu latency-graphs   (issue 15, <= 500 s)
#   bash benchmarks/gpu_check.sh $OUT family                            (issue 12, <= 300 s)
# (each call on a fresh machine renders the JPEG folder again: give jpeg-prepare first)
# Checks (each writes OUTDIR/<check>.json and prints its summary):
#   eager           training step, rsearch vs timm, bf16 + channels_last, eager (model_step.py)
#   compile         the same with torch.compile on both
#   graph           rsearch's CUDA-graph step (fused SGD, EMA) + compile vs timm + compile
#   graph-uncaptured  the same step without the graph, vs timm + compile (what the graph adds)
#   train-check     the training loop eager vs cuda_graphs (and resumed, and fed by the device
#                   JPEG pipeline): same losses? (train_check.py)
#   jpeg-prepare    render the synthetic scenes as a JPEG ImageFolder (once per machine)
#   jpeg-device     CUDA-graph step fed from JPEGs decoded and augmented on the GPU, vs the same
#                   step on synthetic tensors (input_pipeline.py --e2e --decode device)
#   jpeg-cpu        the same fed by CPU loader workers (--decode cpu)
#   pipeline-device the device JPEG pipeline alone (images/s it delivers)
#   e2e-synth       eager step fed by the loader from synthetic scenes vs synthetic tensors
#   latency         inference latency of ResNet-RS-50 @160, batch 1 and 128, eager
#   latency-graphs  the same compiled with CUDA graphs (rsearch cost --compile --cuda-graphs)
#   family          the paper's table 3: RS-350 @256 vs B6 @528, RS-420 @320 vs B7 @600
# DEVICE=cpu runs every check small on the CPU first (a smoke test of this script's wiring).
set -u
OUT=${1:-${OUT:-gpu_out}}
shift || true
CHECKS=("$@")
[ ${#CHECKS[@]} -eq 0 ] && CHECKS=(eager compile graph graph-uncaptured jpeg-prepare train-check
    jpeg-device jpeg-cpu pipeline-device e2e-synth latency latency-graphs family)
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 RSEARCH_CACHE=/tmp/rsearch-cache
JPEG=/tmp/rsearch-jpeg  # synthetic scenes as a JPEG ImageFolder, written once
DEVICE=${DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then
    DTYPE=bfloat16 SMALL="" FAMILY="" TRAIN=""
    STEP="--device cuda --dtype bfloat16 --channels-last"
    FEED="--model resnetrs-50 --resolution 160 --batch 256 --workers 14 --train-size 10240"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
else
    DTYPE=float32 SMALL="--resolution 32 --batch 4 --steps 1 --warmup 1" FAMILY="--smoke"
    TRAIN="--epochs 2 --resolution 32"
    STEP="--device cpu"
    FEED="--resolution 32 --batch 8 --workers 1 --train-size 64 --jpeg-size 48 --steps 2 --warmup 1"
    JPEG=$OUT/jpeg
fi
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)" | tee -a "$OUT/gpu.txt"

run_check() {
    local name=$1
    echo "== $name"
    case $name in
    eager) timeout 120 python3 benchmarks/model_step.py $STEP $SMALL --rounds 5 \
        --json "$OUT/$name.json" ;;
    compile) timeout 220 python3 benchmarks/model_step.py $STEP $SMALL --compile --rounds 3 \
        --json "$OUT/$name.json" ;;
    graph) timeout 230 python3 benchmarks/model_step.py $STEP $SMALL --compile --cuda-graphs \
        --rounds 5 --json "$OUT/$name.json" ;;
    graph-uncaptured) timeout 230 python3 benchmarks/model_step.py $STEP $SMALL --compile \
        --cuda-graphs --no-capture --rounds 5 --json "$OUT/$name.json" ;;
    train-check) timeout 150 python3 benchmarks/train_check.py --device $DEVICE --jpeg $JPEG \
        $TRAIN --json "$OUT/$name.json" ;;
    jpeg-prepare) timeout 180 python3 benchmarks/input_pipeline.py $STEP $FEED --prepare-jpeg $JPEG \
        --prepare-only ;;
    jpeg-device) timeout 200 python3 benchmarks/input_pipeline.py --e2e $STEP $FEED --compile \
        --cuda-graphs --prepare-jpeg $JPEG --decode device --json "$OUT/$name.json" ;;
    jpeg-cpu) timeout 150 python3 benchmarks/input_pipeline.py --e2e $STEP $FEED --compile \
        --cuda-graphs --prepare-jpeg $JPEG --decode cpu --json "$OUT/$name.json" ;;
    pipeline-device) timeout 120 python3 benchmarks/input_pipeline.py $STEP $FEED \
        --prepare-jpeg $JPEG --decode device --json "$OUT/$name.json" ;;
    e2e-synth) timeout 200 python3 benchmarks/input_pipeline.py --e2e $STEP $FEED \
        --json "$OUT/$name.json" ;;
    latency) timeout 60 python3 -m rsearch cost --model resnetrs-50 --resolution 160 --latency \
        --device $DEVICE --dtype $DTYPE --batch 1,128 --no-cache --json > "$OUT/$name.json" ;;
    latency-graphs) timeout 150 python3 -m rsearch cost --model resnetrs-50 --resolution 160 \
        --latency --device $DEVICE --dtype $DTYPE --batch 1,128 --compile --cuda-graphs \
        --no-cache --json > "$OUT/$name.json" ;;
    family) timeout 300 python3 benchmarks/family_step.py --device $DEVICE $FAMILY \
        --json "$OUT/$name.json" ;;
    *) echo "unknown check: $name" >&2; return 2 ;;
    esac 2>&1 | tail -12
    echo "== $name: exit ${PIPESTATUS[0]}"
}

for check in "${CHECKS[@]}"; do
    run_check "$check"
done

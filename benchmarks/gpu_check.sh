#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (torch, torchvision, timm; no Ray):
#   BUDGET=SECONDS bash benchmarks/gpu_check.sh OUTDIR [CHECK ...]   (default: every check)
# A lent machine gives a whole session 15 minutes, its start (1-2 min) included, at most 10
# a call, and sends back at most 8 files. So the script keeps to BUDGET seconds (default 540
# on CUDA): checks run in the order given, each under a timeout cut to what is left, and a
# check whose least time no longer fits is skipped (the log says so). What comes back is
# two files: OUTDIR/log.txt (every line printed) and OUTDIR/results.tar (gpu.txt and each
# check's JSON and log), rewritten after every check, so a call cut short keeps what ended.
# Planned calls, most important first (the second within the machine's 30 s warm time, so
# the JPEG folder and torch.compile's cache are still there):
#   BUDGET=330 bash benchmarks/gpu_check.sh $OUT jpeg-prepare graph jpeg-device    (timeout_s 360)
#   BUDGET=300 bash benchmarks/gpu_check.sh $OUT resize family latency-graphs train-check jpeg-cpu
#                                                                                   (timeout_s 330)
# (about 90 s start + 360 + 330: within the 15 minutes; take the second call's BUDGET from
# status's budget_left_s less 60 s, and make it a rerun if the first failed early.)
# Exit status: 0 when every check that ran exited 0 (skipped ones do not count), else 1.
# Then: mkdir -p benchmarks/results/<gpu>-<date> && tar -xf results.tar -C that folder.
# Checks:
#   eager           training step, rsearch vs timm, bf16 + channels_last, eager (model_step.py)
#   compile         the same with torch.compile on both
#   graph           rsearch's CUDA-graph step (fused SGD, EMA) + compile vs timm + compile
#   graph-uncaptured  the same step without the graph, vs timm + compile (what the graph adds)
#   train-check     the training loop eager vs cuda_graphs (and resumed, and fed by the device
#                   JPEG pipeline): same losses? (train_check.py)
#   jpeg-prepare    render the synthetic scenes as a JPEG ImageFolder (once per machine; the
#                   checks that read it prepare it first when it is missing)
#   jpeg-device     CUDA-graph step fed from JPEGs decoded and augmented on the GPU, vs the same
#                   step on synthetic tensors (input_pipeline.py --e2e --decode device)
#   jpeg-cpu        the same fed by CPU loader workers (--decode cpu)
#   pipeline-device the device JPEG pipeline alone (images/s it delivers)
#   resize          the batch's resized crops: torchvision's call per image vs rsearch's
#                   batched matrix products (resized_crop.py), images/s and host ms per batch
#   e2e-synth       eager step fed by the loader from synthetic scenes vs synthetic tensors
#   latency         inference latency of ResNet-RS-50 @160, batch 1 and 128, eager
#   latency-graphs  the same compiled with CUDA graphs (rsearch cost --compile --cuda-graphs)
#   family          the paper's table 3: RS-350 @256 vs B6 @528, RS-420 @320 vs B7 @600
# DEVICE=cpu runs every check small on the CPU first (a smoke test of this script's wiring).
set -u
OUT=${1:-${OUT:-gpu_out}}
shift || true
CHECKS=("$@")
[ ${#CHECKS[@]} -eq 0 ] && CHECKS=(jpeg-prepare graph jpeg-device resize latency-graphs family
    train-check jpeg-cpu graph-uncaptured eager compile pipeline-device e2e-synth latency)
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}  # the lent machine's python3 holds torch
WORK=${WORK:-/tmp/rsearch-gpu-check-$DEVICE}  # outside OUTDIR: only two files go back
BEGAN=$SECONDS
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)  # absolute: bundle() archives from inside WORK
exec 3>&1 4>&2 > >(tee -a "$OUT/log.txt") 2>&1
TEE=$!  # waited for at the end, or the log's last lines may be lost
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export RSEARCH_CACHE=${RSEARCH_CACHE:-/tmp/rsearch-cache}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/rsearch-inductor}
JPEG=/tmp/rsearch-jpeg  # synthetic scenes as a JPEG ImageFolder, written once
if [ "$DEVICE" = cuda ]; then
    BUDGET=${BUDGET:-540}
    DTYPE=bfloat16 SMALL="" FAMILY="" TRAIN=""
    STEP="--device cuda --dtype bfloat16 --channels-last"
    FEED="--model resnetrs-50 --resolution 160 --batch 256 --workers 14 --train-size 10240"
    LATENCY="--resolution 160 --batch 1,128" GRAPHS="--cuda-graphs"
    RESIZE="--batch 256 --size 160 --source 320"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$WORK/gpu.txt"
else
    BUDGET=${BUDGET:-3600}
    DTYPE=float32 SMALL="--resolution 32 --batch 4 --steps 1 --warmup 1" FAMILY="--smoke"
    TRAIN="--epochs 2 --resolution 32"
    STEP="--device cpu"
    FEED="--resolution 32 --batch 8 --workers 1 --train-size 64 --jpeg-size 48 --steps 2 --warmup 1"
    LATENCY="--resolution 32 --batch 1,4" GRAPHS=""  # CUDA graphs need CUDA
    RESIZE="--batch 8 --rounds 2 --repeats 1"
    JPEG=$WORK/jpeg
    echo "cpu: $(nproc) cores" >"$WORK/gpu.txt"
fi
"$PYTHON" -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)" >>"$WORK/gpu.txt"
cat "$WORK/gpu.txt"

bundle() {  # OUTDIR/results.tar, replaced whole: a call killed meanwhile leaves the last one
    (cd "$WORK" && tar -cf "$OUT/results.tar.part" gpu.txt $(ls -- *.json *.log *.err 2>/dev/null)) &&
        mv "$OUT/results.tar.part" "$OUT/results.tar"
}

# name -> "cap least": the timeout it gets at most, and the least time worth starting it with
declare -A LIMITS=(
    [eager]="120 40" [compile]="220 140" [graph]="240 150" [graph-uncaptured]="230 150"
    [train-check]="150 60" [jpeg-prepare]="120 30" [jpeg-device]="200 90" [jpeg-cpu]="150 80"
    [pipeline-device]="120 40" [e2e-synth]="200 60" [latency]="60 20" [latency-graphs]="150 70"
    [family]="300 120" [resize]="60 20"
)

# The command of a check; JSON_ON_STDOUT=1 where the program prints its JSON (rsearch cost).
check_command() {
    local name=$1 json=$WORK/$1.json
    JSON_ON_STDOUT=0
    case $name in
    eager) CMD=("$PYTHON" benchmarks/model_step.py $STEP $SMALL --rounds 5 --json "$json") ;;
    compile) CMD=("$PYTHON" benchmarks/model_step.py $STEP $SMALL --compile --rounds 3
        --json "$json") ;;
    graph) CMD=("$PYTHON" benchmarks/model_step.py $STEP $SMALL --compile --cuda-graphs --rounds 5
        --json "$json") ;;
    graph-uncaptured) CMD=("$PYTHON" benchmarks/model_step.py $STEP $SMALL --compile --cuda-graphs
        --no-capture --rounds 5 --json "$json") ;;
    train-check) CMD=("$PYTHON" benchmarks/train_check.py --device "$DEVICE" --jpeg "$JPEG" $TRAIN
        --json "$json") ;;
    jpeg-prepare) CMD=("$PYTHON" benchmarks/input_pipeline.py $STEP $FEED --prepare-jpeg "$JPEG"
        --prepare-only) ;;
    jpeg-device) CMD=("$PYTHON" benchmarks/input_pipeline.py --e2e $STEP $FEED --compile
        --cuda-graphs --prepare-jpeg "$JPEG" --decode device --json "$json") ;;
    jpeg-cpu) CMD=("$PYTHON" benchmarks/input_pipeline.py --e2e $STEP $FEED --compile --cuda-graphs
        --prepare-jpeg "$JPEG" --decode cpu --json "$json") ;;
    pipeline-device) CMD=("$PYTHON" benchmarks/input_pipeline.py $STEP $FEED --prepare-jpeg "$JPEG"
        --decode device --json "$json") ;;
    e2e-synth) CMD=("$PYTHON" benchmarks/input_pipeline.py --e2e $STEP $FEED --json "$json") ;;
    latency) JSON_ON_STDOUT=1 CMD=("$PYTHON" -m rsearch cost --model resnetrs-50 $LATENCY --latency
        --device "$DEVICE" --dtype $DTYPE --no-cache --json) ;;
    latency-graphs) JSON_ON_STDOUT=1 CMD=("$PYTHON" -m rsearch cost --model resnetrs-50 $LATENCY
        --latency --device "$DEVICE" --dtype $DTYPE --compile $GRAPHS --no-cache --json) ;;
    resize) CMD=("$PYTHON" benchmarks/resized_crop.py --device "$DEVICE" $RESIZE --json "$json") ;;
    family) CMD=("$PYTHON" benchmarks/family_step.py --device "$DEVICE" $FAMILY --json "$json") ;;
    *) return 2 ;;
    esac
}

run_check() {
    local name=$1 start=$SECONDS
    if ! check_command "$name"; then
        echo "== $name: unknown check (known: ${!LIMITS[*]})"
        FAILED+=("$name")
        return
    fi
    read -r cap least <<<"${LIMITS[$name]}"
    local left=$((BUDGET - (SECONDS - BEGAN)))
    if [ "$left" -lt "$least" ]; then
        echo "== $name: skipped: ${left} s of BUDGET=$BUDGET left, it needs ${least} s"
        return
    fi
    local limit=$((cap < left ? cap : left)) out=$WORK/$name.log
    [ "$JSON_ON_STDOUT" = 1 ] && out=$WORK/$name.json
    echo "== $name (timeout ${limit} s)"
    timeout -k 10 "$limit" "${CMD[@]}" >"$out" 2>"$WORK/$name.err"
    local rc=$?
    [ "$rc" = 0 ] || FAILED+=("$name")
    tail -n 12 "$WORK/$name.err"
    [ "$JSON_ON_STDOUT" = 1 ] || tail -n 12 "$out"
    echo "== $name: exit $rc after $((SECONDS - start)) s ($((BUDGET - (SECONDS - BEGAN))) s left)"
    bundle
}

FAILED=()
for check in "${CHECKS[@]}"; do
    case $check in  # these read the JPEG folder: render it first where it is missing
    train-check | jpeg-device | jpeg-cpu | pipeline-device)
        [ -e "$JPEG/train/.complete" ] || run_check jpeg-prepare ;;
    esac
    run_check "$check"
done
bundle
echo "== done in $((SECONDS - BEGAN)) s; failed: ${FAILED[*]:-none}; results: $OUT/results.tar, $OUT/log.txt"
exec >&3 2>&4
wait "$TEE"
[ ${#FAILED[@]} -eq 0 ]

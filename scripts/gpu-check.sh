#!/usr/bin/env bash
# One command for a CUDA machine without network: the `gpu` tests, the four-step run (train each small config
# 2 epochs in bf16 on the GPU, evaluate, detect) on a tiny synthetic corpus, and the training-step benchmark,
# all with random backbones, written into one folder. Runs from source (PYTHONPATH), installing what the
# machine's Python lacks from wheels carried in wheels/ (fetched beforehand, on a machine with network).
#
#   scripts/gpu-check.sh --download-wheels   # here, with network: wheels/ for CPython 3.12 manylinux x86_64
#   scripts/gpu-check.sh [--out DIR]         # on the GPU machine (DIR defaults to $OUT, else gpu-check-out)
#   scripts/gpu-check.sh --cpu [--out DIR]   # the same end to end on the CPU, as a dry run (small settings)
#
# Expects python3 (or $PYTHON) with torch and transformers installed. Results: DIR/summary.md (what passed,
# how long each step took), DIR/pytest.txt, DIR/runs/, DIR/eval/, DIR/detect/, DIR/bench.{txt,json}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WHEELS="$ROOT/wheels"
# Distribution=import name of everything the tests, the CLI runs and the benchmark import, beyond torch
# and transformers (and their own dependencies: numpy, safetensors, huggingface_hub, pyyaml, tqdm, packaging).
# Downloaded without dependencies (pip would otherwise fetch torch), so the list is closed by hand; "=-":
# a dependency only, installed by pip when a package needing it is.
PACKAGES=(
  av=av soxr=soxr pytest=pytest iniconfig=iniconfig pluggy=pluggy pygments=pygments
  pytorch-lightning=pytorch_lightning lightning-utilities=lightning_utilities torchmetrics=torchmetrics
  fsspec=fsspec aiohttp=aiohttp aiohappyeyeballs=aiohappyeyeballs aiosignal=aiosignal attrs=attrs
  frozenlist=frozenlist multidict=multidict propcache=propcache yarl=yarl idna=idna
  peft=peft accelerate=accelerate psutil=psutil
  scikit-learn=sklearn scipy=scipy joblib=joblib threadpoolctl=threadpoolctl
  matplotlib=matplotlib contourpy=contourpy cycler=cycler fonttools=fontTools kiwisolver=kiwisolver
  pyparsing=pyparsing python-dateutil=dateutil six=- pillow=PIL
  tensorboard=tensorboard tensorboard-data-server=tensorboard_data_server protobuf=google.protobuf
  grpcio=grpc markdown=markdown werkzeug=werkzeug markupsafe=markupsafe absl-py=absl
  typing-extensions=typing_extensions
)

mode=gpu
out="${OUT:-$ROOT/gpu-check-out}"
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) mode=cpu ;;
    --download-wheels) mode=download ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$mode" = download ]; then
  mkdir -p "$WHEELS"
  names=(); for pair in "${PACKAGES[@]}"; do names+=("${pair%%=*}"); done
  "$PYTHON" -m pip download --only-binary=:all: --no-deps --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d "$WHEELS" "${names[@]}"
  du -sh "$WHEELS"
  exit 0
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary="$out/summary.md"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

# What the machine lacks, installed from wheels/ (no index: the machine has no network).
# One interpreter checks every import (one per package would cost a torch import each).
read -r -a missing <<<"$("$PYTHON" - "${PACKAGES[@]}" <<'PY'
import importlib.util, sys
pairs = [arg.split("=", 1) for arg in sys.argv[1:]]
def importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is absent
        return False
print(" ".join(dist for dist, module in pairs if module != "-" and not importable(module)))
PY
)"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing from $WHEELS: ${missing[*]}"
  "$PYTHON" -m pip install --no-index --find-links "$WHEELS" "${missing[@]}" >"$out/pip.txt" 2>&1 \
    || { echo "gpu-check.sh: pip could not install ${missing[*]} from $WHEELS (see $out/pip.txt)" >&2; exit 1; }
fi

if [ "$mode" = gpu ]; then
  "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "gpu-check.sh: torch sees no CUDA device here (use --cpu for a dry run)" >&2; exit 1; }
  device=cuda accelerator=gpu test_device=cuda videos=24 batch=16 workers=8
  bench=(--device cuda --batch 32 --repeats 5 --max-batch --max-batch-limit 256)
else
  device=cpu accelerator=cpu test_device=cpu videos=24 batch=4 workers=2
  bench=(--device cpu --rows avprompt/small macbdf/small cad/small --batch 2 --repeats 1 --threads 2)
fi

{
  echo "# gpu-check ($mode) $(date -u +%FT%TZ)"
  "$PYTHON" -c "import torch, transformers, platform; print('python', platform.python_version(), '| torch', \
torch.__version__, '| transformers', transformers.__version__, '| device', torch.cuda.get_device_name(0) \
if torch.cuda.is_available() else 'cpu')"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
} >"$summary"
failures=0

step() {  # step NAME LOGFILE COMMAND...: run, log, and record the outcome and the time in the summary
  local name="$1" log="$2"; shift 2
  local start=$SECONDS status=ok
  echo "== $name"
  "$@" >"$log" 2>&1 || { status="FAILED (see ${log#"$out"/})"; failures=$((failures + 1)); }
  echo "| $name | $status | $((SECONDS - start)) |" >>"$summary"
  echo "   $status in $((SECONDS - start)) s"
}

cli() { "$PYTHON" -m avforensics.cli "$@"; }

step "gpu tests" "$out/pytest.txt" env AVFORENSICS_GPU_TEST_DEVICE="$test_device" \
  "$PYTHON" -m pytest -q -m gpu tests/test_gpu.py --basetemp="$out/pytest-tmp" -p no:cacheprovider

step "synthetic corpus" "$out/synth.txt" cli synth "$out/corpus" --videos "$videos" --seed 7 \
  --durations 1.0 1.6 --workers "$workers"
step "prepare" "$out/prepare.txt" cli prepare synthetic "$out/corpus" --out "$out/prepared" --size 112 \
  --workers "$workers"

videos_to_detect=("$out"/corpus/videos/*)
mkdir -p "$out/detect"
for detector in avprompt macbdf cad; do
  config="$detector/small"
  random=$("$PYTHON" -c "from avforensics.models.registry import random_backbone_overrides as r; \
print(' '.join(f'model.overrides.{k}=null' for k in r('$detector', 'small')))")
  sets=(--set data.root="$out/corpus" --set data.options.prepared="$out/prepared" --set data.batch_size=$batch
        --set "data.options.protocol_params={k: 3, fold: 0, val_fold: true}" --set data.workers=2 --set optim.epochs=2 --set optim.schedule=constant --set optim.warmup_epochs=0
        --set "optim.milestones=[]" --set trainer.val_every_n_epochs=2 --set trainer.accelerator=$accelerator
        --set trainer.devices=1 --set trainer.precision=bf16-mixed --set trainer.checkpoint_every_n_steps=1000000)
  for override in $random; do sets+=(--set "$override"); done
  rm -rf "$out/runs/$detector" "$out/eval/$detector"
  step "$detector train (2 epochs, bf16-mixed, $accelerator)" "$out/train-$detector.txt" \
    cli train "$config" --out "$out/runs/$detector" "${sets[@]}"
  step "$detector evaluate ($device)" "$out/evaluate-$detector.txt" \
    cli evaluate "$out/runs/$detector" --out "$out/eval/$detector" --device "$device" --no-plots
  step "$detector detect ($device)" "$out/detect-$detector.txt" \
    cli detect --model "$out/runs/$detector/checkpoints/last.ckpt" "${videos_to_detect[@]:0:2}" \
    --device "$device" --jsonl "$out/detect/$detector.jsonl"
done

step "benchmark" "$out/bench.txt" "$PYTHON" benchmarks/bench_train_step.py "${bench[@]}" --out "$out/bench.json"

{
  echo
  echo "## benchmark"
  echo
  sed -n '/^| row /,$p' "$out/bench.txt"
} >>"$summary"
echo "$failures step(s) failed; everything is in $out (summary.md first)"
cat "$summary"
[ "$failures" -eq 0 ]

#!/usr/bin/env bash
# Train the zoo on one GPU machine in one go: six style nets, x4/x8 super-resolution nets (perceptual and pixel) and
# a six-style StyleBank followed by one style added incrementally, all side by side (each training step alone is
# launch-bound, so one GPU serves them together; CUDA MPS lets their kernels overlap where the machine has it).
# Every run plans its steps from the rate measured with all of them side by side, anneals its learning rate to 0
# over them (scheduler=cosine: the CPU fine-tunes settled lower with it), and stops at a wall-time limit should the
# GPU be slower; the runs are packed into zoo entries (fp16) in a few tar files under $OUT, also once halfway as
# insurance.
#   PHOTOS=300 bash ../shared/gpu/bundle.sh            # here: photos, styles, HED weights, wheels (--sr: Set5/Set14)
#   bash experiments/zoo/gpu_run.sh [SECONDS] [--dry]   # there, from the project root (SECONDS: the whole run)
# --dry: a few steps of each run on the CPU, to check the script itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
TOTAL_S=${1:-570}; DRY=${2:-}
OUT=${OUT:-/tmp/zoo_out}; RUNS=/tmp/zoo_runs; STAGE=/tmp/zoo_entries
rm -rf "$RUNS" "$STAGE"; mkdir -p "$OUT" "$RUNS" "$STAGE"
exec > >(tee -a "$OUT/driver.log") 2>&1
t0=$(date +%s); deadline=$((t0 + TOTAL_S))
elapsed() { echo $(( $(date +%s) - t0 )); }
if [ "$DRY" = --dry ]; then  # the checkout's own environment; the bundle's data
  export PYTHONPATH=$PWD/src GPU_PHOTOS=$PWD/.gpu/photos GPU_STYLES=$PWD/.gpu/styles GPU_SR=$PWD/.gpu/sr GPU_VGG=$PWD/.gpu/vgg16_hed_relu4_3.pth
else
  source .gpu/prelude.sh || exit 1
fi
export OMP_NUM_THREADS=2   # the main processes only launch GPU work; loader workers use one thread each

if [ "$DRY" = --dry ]; then
  HW="CPU (dry run)"; common="trainer.accelerator=cpu trainer.precision=32-true trainer.max_steps=3 data.image_size=64 data.val_image_size=64 data.num_workers=0 task.channels_last=false trainer.val_check_interval=2"
  sr_common="trainer.accelerator=cpu trainer.precision=32-true trainer.max_steps=3 data.image_size=64 data.num_workers=0 task.channels_last=false trainer.val_check_interval=2"
else
  HW="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(nproc --all) CPU cores"  # --all: nproc obeys OMP_NUM_THREADS
  common="+trainer.benchmark=true"; sr_common="+trainer.benchmark=true"
  nvidia-smi dmon -s u -d 10 > "$OUT/gpu_util.log" 2>&1 &
  if command -v nvidia-cuda-mps-control >/dev/null; then   # overlapping kernels of several processes
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if timeout 20 nvidia-cuda-mps-control -d && timeout 60 python3 -c "import torch; assert torch.ones(2, device='cuda').sum().item() == 2"; then
      echo "MPS on"
    else
      echo "MPS failed: time-sliced processes"; echo quit | timeout 10 nvidia-cuda-mps-control
      unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
  else
    echo "no MPS: time-sliced processes"
  fi
fi
echo "[$(elapsed) s] hardware: $HW"

# Steps per second of each kind of run with all eleven side by side (one H200, CUDA MPS, 2026-12-04;
# experiments/zoo/README.md). A run plans 95 % of rate x seconds, so that its anneal ends before the time limit.
STYLE_RATE=${STYLE_RATE:-4.2}; SR_PERCEPTUAL_RATE=${SR_PERCEPTUAL_RATE:-6.8}; SR_PIXEL_RATE=${SR_PIXEL_RATE:-8.2}
STYLEBANK_RATE=${STYLEBANK_RATE:-5.4}
planned_steps() { python3 -c "import sys; print(max(1, int(0.95 * float(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$2"; }

# run NAME SECONDS RATE DESCRIPTION TRAINED_ON SHARED_WITH ARGS...: train the steps that RATE (steps/s) fits in
# SECONDS with the rate annealed over them, stopping at the time limit if slower; then record how it ended.
run() {
  local name=$1 seconds=$2 rate=$3 description=$4 trained_on=$5 shared=$6; shift 6
  local steps; steps=$(planned_steps "$rate" "$seconds")
  local args="scheduler=cosine trainer.max_steps=$steps $*" limit
  limit=$(printf "00:00:%02d:%02d" $((seconds / 60)) $((seconds % 60)))
  local command="python src/train.py $args"
  python3 - "$RUNS/$name.json" "$name" "$RUNS/$name" "$description" "$trained_on" "$shared" "$command" <<'PY'
import json, sys, time
path, name, run_dir, description, trained_on, shared, command = sys.argv[1:]
json.dump({"name": name, "run_dir": run_dir, "description": description, "trained_on": trained_on,
           "loss_net_weights": "hed", "shared_with": shared, "command": command, "started": time.time(),
           "ended": None}, open(path, "w"))
PY
  echo "[$(elapsed) s] start $name for $seconds s: $command"
  eval "python3 src/train.py $args hydra.run.dir=$RUNS/$name \"trainer.max_time='$limit'\"" > "$RUNS/$name.log" 2>&1
  echo "[$(elapsed) s] $name ended (exit $?): $(grep -o 'finished at step [0-9]*' "$RUNS/$name.log" | tail -1)"
  python3 -c "import json, sys, time; p = sys.argv[1]; m = json.load(open(p)); m['ended'] = time.time(); json.dump(m, open(p, 'w'))" "$RUNS/$name.json"
}

# pack: every run's last checkpoint -> zoo entry, tarred in groups that fit the 16 MiB per returned file.
pack() {
  python3 experiments/zoo/pack.py "$RUNS"/*.json --zoo "$STAGE" --hardware "$HW"
  (cd "$STAGE" && tar cf "$OUT/.zoo_1.tar" $(ls candy.pt starry_night.pt mosaic.pt udnie.pt 2>/dev/null) && mv "$OUT/.zoo_1.tar" "$OUT/zoo_1.tar")
  (cd "$STAGE" && tar cf "$OUT/.zoo_2.tar" $(ls the_scream.pt rain_princess.pt sr_*.pt 2>/dev/null) $(ls stylebank.pt 2>/dev/null || ls stylebank_joint.pt 2>/dev/null) && mv "$OUT/.zoo_2.tar" "$OUT/zoo_2.tar")
  python3 experiments/zoo/scalars.py "$RUNS"   # <run>/scalars.csv from TensorBoard: the curves without the images
  (cd "$RUNS" && tar cf /tmp/runs.tar --exclude='*.ckpt' --exclude='tensorboard' --exclude='samples' . \
     && tar rf /tmp/runs.tar $(for d in */samples; do ls "$d"/step_*.png | tail -1; done) \
     && gzip -c /tmp/runs.tar > "$OUT/.runs.tgz" && mv "$OUT/.runs.tgz" "$OUT/runs.tgz")
  echo "[$(elapsed) s] packed: $(ls "$STAGE" | tr '\n' ' ')"
}

P='data.root=$GPU_PHOTOS loss_net.weights=$GPU_VGG'
shared="trained alongside 5 other style nets, 4 SR nets and a StyleBank on the same GPU"
startup=60; finish=$((deadline - 50))                   # 50 s left for the last checkpoints and packing
train_s=$((finish - $(date +%s) - startup))
runs=()
n_photos=$(ls "$GPU_PHOTOS" | wc -l)
photos="BSDS500 train+test ($n_photos photos, 288 px short side), 256 px crops"
for style in candy starry_night mosaic udnie the_scream rain_princess; do
  run "$style" "$train_s" "$STYLE_RATE" "Johnson et al. style net for ${style}, paper-scale recipe on a GPU" "$photos" "$shared" \
    experiment=zoo_style_gpu "$P" 'style=$GPU_STYLES/'"$style.jpg" $common &
  runs+=($!)
done
sr_photos="BSDS500 train+test ($n_photos photos, 288 px short side), 288 px HR crops, blur sigma 1 + MATLAB bicubic"
sr_val='paths.benchmark_dir=$GPU_SR'   # Set5/Set14 validation; without .gpu/sr (left out for size) the held-out crops only
[ -d .gpu/sr ] || { sr_val="'~data.val_sets.set5' '~data.val_sets.set14'"; echo "no .gpu/sr: SR runs validate on held-out crops only"; }
for scale in 4 8; do
  for loss in perceptual pixel; do
    rate=$SR_PIXEL_RATE; [ "$loss" = perceptual ] && rate=$SR_PERCEPTUAL_RATE
    run "sr_x${scale}_${loss}" "$train_s" "$rate" "Johnson et al. x${scale} SR net, ${loss} loss, paper-scale crops on a GPU" \
      "$sr_photos" "$shared" experiment=zoo_sr_gpu scale=$scale loss=$loss "$P" "$sr_val" $sr_common &
    runs+=($!)
  done
done
joint='"[$GPU_STYLES/mosaic.jpg,$GPU_STYLES/wave.jpg,$GPU_STYLES/udnie.jpg,$GPU_STYLES/la_muse.jpg,$GPU_STYLES/composition_vii.jpg,$GPU_STYLES/feathers.jpg]"'
(
  run stylebank_joint $((train_s * 2 / 3)) "$STYLEBANK_RATE" "StyleBank, six styles jointly" "$photos" "$shared" \
    experiment=zoo_stylebank_gpu "$P" "data.styles=$joint" $common
  run stylebank $((finish - $(date +%s) - startup / 2)) "$STYLEBANK_RATE" \
    "StyleBank: mosaic, wave, udnie, la_muse, composition_vii, feathers jointly, then the_scream added incrementally" \
    "$photos" "$shared" experiment=zoo_stylebank_gpu task=stylebank_incremental "$P" \
    "init_ckpt=$RUNS/stylebank_joint/checkpoints/last.ckpt" 'data.styles="[$GPU_STYLES/the_scream.jpg]"' $common
) &
runs+=($!)

sleep $(( (finish - $(date +%s)) / 2 )) && [ "$DRY" != --dry ] && { echo "[$(elapsed) s] halfway snapshot"; nvidia-smi; pack; } &
# Watchdog: whatever still trains at the finish line is stopped (its last periodic checkpoint is packed).
( while [ "$(date +%s)" -lt $((finish + 15)) ]; do sleep 5; done; pkill -f 'src/train.py' && echo "[$(elapsed) s] watchdog stopped late runs" ) &
watchdog=$!
wait "${runs[@]}"   # the runs themselves: a process search could look before the first one has started
kill $watchdog 2>/dev/null
pack
for log in "$RUNS"/*.log; do echo "== $(basename "$log"): $(grep -o 'finished at step [0-9]*' "$log" | tail -1)"; grep -i -m3 'error\|traceback' "$log"; done
echo "[$(elapsed) s] done"

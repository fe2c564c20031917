#!/usr/bin/env bash
# The kernels bench on a GPU host, as bench/RESULTS.md reports it: `bash gpu_session.sh OUT [--sweep]`
# from a folder holding kernels.mjs (`npm run bench -- kernels --bundle`), torch_kernels.py,
# triton_moe.py, pick_moe_layout.py and clock_summary.py.
#
# Both sides must run at the same GPU clocks. A CUDA process keeps the GPU at its boost clock while
# it lives; Dawn's Vulkan work, one timed submit at a time, lets the driver drop the SM clock to
# 345–1300 MHz within a second (H100, 2026-12-06: arithmetic-bound MoE GEMVs then ran 2–5× slower,
# memory-bound kernels hardly at all). So an idle CUDA context is held open through our runs (it
# does no work), nvidia-smi samples the SM clock every 100 ms, and each phase's clocks are printed.
# --sweep: first time the MoE GEMV layouts and give the main suite the fastest at T = 64
# (pick_moe_layout.py); without it the default layout. Then two runs in a row: torch, then ours.
set -u
O=$1
SWEEP=${2:-}
PHASES=$O/phases.txt
: > "$PHASES"
phase() { echo "$1 $(date +%s.%N)" >> "$PHASES"; }
nvidia-smi --query-gpu=timestamp,clocks.sm,utilization.gpu,power.draw --format=csv,noheader -lms 100 > "$O/clocks.csv" &
SMI=$!
python3 -c "import torch, time; torch.zeros(1, device='cuda'); torch.cuda.synchronize(); time.sleep(3600)" &
HOLD=$!
sleep 5
PICK='{}'
if [ "$SWEEP" = "--sweep" ]; then
  phase sweep; node kernels.mjs --json "$O/sweep.json" > "$O/sweep.txt" 2>&1; echo "sweep rc $?"
  PICK=$(python3 pick_moe_layout.py "$O/sweep.json")
fi
node kernels.mjs --dump-logits /tmp/logits.json > /dev/null
for run in a b; do
  phase "torch_$run"; python3 torch_kernels.py --out "$O/torch_$run.json" --logits /tmp/logits.json > "$O/torch_$run.txt" 2>&1; echo "torch $run rc $?"
  phase "ours_$run"; node kernels.mjs --torch "$O/torch_$run.json" --moe-layout "$PICK" --json "$O/ours_$run.json" > "$O/ours_$run.txt" 2>&1; echo "ours $run rc $?"
done
phase end
kill $HOLD $SMI
python3 clock_summary.py "$O/clocks.csv" "$PHASES" | tee "$O/clocks.txt"

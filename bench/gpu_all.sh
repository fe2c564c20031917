#!/usr/bin/env bash
# Both GPU benches in one call, as bench/RESULTS.md reports them: `bash gpu_all.sh OUT [--sweep]`
# from a folder holding what gpu_session.sh needs plus fusions.mjs (`npm run bench -- fusions
# --bundle`) and torch_fusions.py. The kernels session (gpu_session.sh: torch and ours at the same
# clocks, twice), then the fusions bench with an idle CUDA context held open for the same reason.
set -u
O=$1
shift
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$O/card.txt"
bash gpu_session.sh "$O" "$@"
python3 -c "import torch, time; torch.zeros(1, device='cuda'); torch.cuda.synchronize(); time.sleep(3600)" &
HOLD=$!
sleep 3
timeout 150 node fusions.mjs --json "$O/fus_ours.json" --check /tmp/check.json > "$O/fus_ours.txt" 2>&1; echo "fusions ours rc $?"
timeout 200 python3 torch_fusions.py --out "$O/fus_torch.json" --check /tmp/check.json --budget 110 > "$O/fus_torch.txt" 2>&1; echo "fusions torch rc $?"
node fusions.mjs --table "$O/fus_ours.json" "$O/fus_torch.json" > "$O/fus_table.txt" 2>&1; echo "fusions table rc $?"
kill $HOLD

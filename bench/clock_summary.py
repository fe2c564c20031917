"""SM clock per phase of bench/gpu_session.sh: min / median / max of nvidia-smi's samples between
each phase's start and the next one's (phases file: `name epoch-seconds` per line)."""
import datetime
import statistics
import sys

samples = []
for line in open(sys.argv[1]):
    parts = line.strip().split(', ')
    if len(parts) < 2:
        continue
    t = datetime.datetime.strptime(parts[0], '%Y/%m/%d %H:%M:%S.%f').timestamp()
    samples.append((t, int(parts[1].split()[0])))
phases = [(n, float(t)) for n, t in (l.split() for l in open(sys.argv[2]) if l.strip())]
for (name, start), (_, end) in zip(phases, phases[1:]):
    sm = [c for t, c in samples if start <= t < end]
    if sm:
        print(f'{name}: SM clock min {min(sm)} / median {statistics.median(sm):.0f} / max {max(sm)} MHz over {len(sm)} samples ({end - start:.0f} s)')

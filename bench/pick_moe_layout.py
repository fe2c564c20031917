"""The MoE GEMV layout of a kernels sweep (`node kernels.mjs --json F`, rows `moe layout`) with the
best T = 64 kernel time among those bitwise equal to their reference and no slower than 1.03x the
default at T = 1, 4 and 16; prints its fields as JSON for --moe-layout ('{}': none beats the default)."""
import json
import sys

rows = json.load(open(sys.argv[1]))['results']
base = {r['T']: r['us'] for r in rows if r['suite'] == 'moe (expert weights streamed)'}
by = {}
for r in rows:
    note = r.get('note', '')
    if r['suite'] == 'moe layout' and 'bitwise' in note and 'differ' not in note:
        by.setdefault(json.dumps(r['layout'], sort_keys=True), {})[r['T']] = r['us']
best, best_us = '{}', base.get(64, 0.0)
for k, t in by.items():
    if all(t.get(T, 1e30) <= 1.03 * base[T] for T in (1, 4, 16) if T in base) and t.get(64, 1e30) < best_us:
        best, best_us = k, t[64]
print(best)
sys.stderr.write(f'picked {best}: T = 64 {best_us:.1f} us against the default {base.get(64, 0.0):.1f}\n')

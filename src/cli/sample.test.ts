import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFx } from '../graph/fx/parse.ts';
import { generateSample } from '../graph/samples/index.ts';

const BIN = join(import.meta.dirname, '../../bin/fusionlab.js');
const run = (args: string[]) => spawnSync('node', [BIN, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });

describe('fusionlab sample', () => {
  it('writes the generated FX text for the model, layers and TP asked for', () => {
    const r = run(['sample', 'llama', '--layers', '2', '--tp', '8']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(generateSample('llama', { layers: 2, tp: 8 }));
    const g = parseFx(r.stdout).graph;
    expect(g.nodes.filter((n) => n.op === 'vllm.all_reduce.default')).toHaveLength(5);
  });

  it('refuses what it cannot generate, exit 2', () => {
    const tp = run(['sample', 'gpt-oss-120b', '--tp', '3']);
    expect(tp.status).toBe(2);
    expect(tp.stderr).toContain("tp 3 does not divide gpt-oss-120b's 64 attention heads");
    const model = run(['sample', 'gpt-5']);
    expect(model.status).toBe(2);
    expect(model.stderr).toContain("unknown model 'gpt-5'");
  });
});

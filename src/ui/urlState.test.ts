import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeUrlState, encodeUrlState, readUrlState, urlWithState, UrlStateError, type UrlState } from './urlState.ts';

const qwen = readFileSync(new URL('../../fixtures/fx/real/qwen2-paral2_layer1-r0.py', import.meta.url), 'utf8');

describe('URL state', () => {
  it('round-trips a sample reference, steps, gates, selection and view', async () => {
    const state: UrlState = {
      v: 1,
      source: { sample: 'gpt-oss-20b-l24-tp4' },
      steps: [{ pass: 'slice-hoist' }, { pass: 'allreduce-rmsnorm', site: 'all_reduce_3' }],
      gates: { worldSize: 4, maxTokens: 2048, gpu: 'hopper' },
      selected: 'auto_functionalized_7',
      view: { layout: 'split', tab: 'run', theme: 'dark' },
    };
    const encoded = await encodeUrlState(state);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(await decodeUrlState(encoded)).toEqual(state);
  });

  it('compresses a pasted real dump to well under its size and restores it byte for byte', async () => {
    const state: UrlState = { v: 1, source: { text: qwen, name: 'qwen2-paral2_layer1-r0.py' }, steps: [] };
    const encoded = await encodeUrlState(state);
    expect(encoded.length).toBeLessThan(qwen.length / 2);
    const back = await decodeUrlState(encoded);
    expect(back.source).toEqual({ text: qwen, name: 'qwen2-paral2_layer1-r0.py' });
  });

  it('keeps the other query parameters and the hash of the page URL', async () => {
    const href = await urlWithState('http://127.0.0.1:4173/?test=1&agent=ws%3A%2F%2F127.0.0.1%3A7777#token=abc', {
      v: 1, source: { sample: 'pr-before' }, steps: [],
    });
    const url = new URL(href);
    expect(url.searchParams.get('test')).toBe('1');
    expect(url.searchParams.get('agent')).toBe('ws://127.0.0.1:7777');
    expect(url.hash).toBe('#token=abc');
    expect((await readUrlState(url))?.source).toEqual({ sample: 'pr-before' });
  });

  it('names what is wrong with a damaged link', async () => {
    await expect(decodeUrlState('abc$def')).rejects.toThrow(/character "\$" at offset 3/);
    await expect(decodeUrlState('AAAA')).rejects.toThrow(UrlStateError);
    const wrongShape = await encodeUrlState({ v: 1, source: { sample: 'x' }, steps: [{ pass: 3 }] } as unknown as UrlState);
    await expect(decodeUrlState(wrongShape)).rejects.toThrow('steps[0] has no pass name');
    expect(await readUrlState({ search: '?test=1' })).toBeNull();
  });
});

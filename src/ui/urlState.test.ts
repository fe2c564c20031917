import { describe, expect, it } from 'vitest';
import { agentAddressFromLocation } from '../runtime/agentClient.ts';
import {
  MAX_QUERY_STATE_CHARS,
  MAX_STATE_BYTES,
  decodeUrlState,
  encodeUrlState,
  placeUrlState,
  readUrlState,
  urlWithState,
  URL_VIEW_PARAM,
  formatViewCentre,
  parseViewCentre,
  withViewCentre,
  UrlStateError,
  type StateStorage,
  type UrlState,
} from './urlState.ts';
import { MEGATRON_L8, QWEN_TP2 } from './testFixtures.ts';

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

  it('round-trips every control that changes a number on screen: cost model, Run form, overlay', async () => {
    const state: UrlState = {
      v: 1,
      source: { sample: 'gpt-oss-20b-l1-tp4' },
      steps: [],
      cost: { profile: 'B200-NVLink', tokens: 4096, tp: 8, algorithm: 'two-shot' },
      run: { backend: 'cpu', ranks: 2, preset: 'tiny', dtype: 'f32', allreduce: 'ring', timedRuns: 5 },
      overlay: { metric: 'delta', rank: 1 },
    };
    expect(await decodeUrlState(await encodeUrlState(state))).toEqual(state);
    const following = { ...state, cost: { tp: null }, overlay: { rank: 'max' as const } };
    expect(await decodeUrlState(await encodeUrlState(following))).toEqual(following);
  });

  it('round-trips where the graph views look: a node, the offset from it and the zoom', async () => {
    const state: UrlState = {
      v: 1,
      source: { sample: 'gpt-oss-20b-l24-tp4' },
      steps: [],
      view: { layout: 'single', centre: { node: 'all_reduce_2', dx: -12.5, dy: 40.1, k: 1.5 } },
    };
    expect(await decodeUrlState(await encodeUrlState(state))).toEqual(state);
    // A link made before views were shared still opens, with no centre.
    const old: UrlState = { v: 1, source: { sample: 'pr-before' }, steps: [], view: { theme: 'dark' } };
    expect((await decodeUrlState(await encodeUrlState(old))).view).toEqual({ theme: 'dark' });
  });

  it('refuses a view centre that is not a number, not finite, or zoomed out of range, by path', async () => {
    // Hand-written JSON: JSON.stringify would turn NaN and Infinity into null before they got here.
    const link = async (centre: string) => {
      const json = `{"v":1,"source":{"sample":"pr-before"},"steps":[],"view":{"centre":${centre}}}`;
      const bytes = new Uint8Array(
        await new Response(
          new Blob([json]).stream().pipeThrough(new CompressionStream('deflate')),
        ).arrayBuffer(),
      );
      return btoa(String.fromCharCode(...bytes))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '');
    };
    const cases: [string, string][] = [
      [
        '{"node":"add","dx":null,"dy":0,"k":1}',
        'state.view.centre.dx is null; expected a number in [-10000000, 10000000]',
      ],
      ['{"node":"add","dx":0,"dy":1e999,"k":1}', 'state.view.centre.dy is Infinity; expected a number in'],
      ['{"node":"add","dx":0,"dy":0,"k":0}', 'state.view.centre.k is 0; expected a number in [0.01, 4]'],
      ['{"node":"add","dx":0,"dy":0,"k":-2}', 'state.view.centre.k is -2'],
      ['{"node":"add","dx":0,"dy":0,"k":1e9}', 'state.view.centre.k is 1000000000'],
      ['{"node":"add","dx":0,"dy":0,"k":"2"}', 'state.view.centre.k is "2"'],
      ['{"node":7,"dx":0,"dy":0,"k":1}', 'state.view.centre.node is 7, not text'],
      ['{"dx":0,"dy":0,"k":1}', 'state.view.centre.node is undefined, not text'],
      ['{"node":"add","dx":0,"dy":0,"k":1,"x":3}', 'state.view.centre.x is not a field of the state'],
      ['[1,2,1]', 'state.view.centre is a list, not an object'],
    ];
    for (const [centre, message] of cases)
      await expect(decodeUrlState(await link(centre))).rejects.toThrow(`state parameter: ${message}`);
    expect((await decodeUrlState(await link('{"node":"add","dx":0,"dy":-3,"k":4}'))).view?.centre).toEqual({
      node: 'add',
      dx: 0,
      dy: -3,
      k: 4,
    });
  });

  it('compresses a pasted real dump to well under its size and restores it byte for byte', async () => {
    const state: UrlState = {
      v: 1,
      source: { text: QWEN_TP2, name: 'qwen2-paral2_layer1-r0.py' },
      steps: [],
    };
    const encoded = await encodeUrlState(state);
    expect(encoded.length).toBeLessThan(QWEN_TP2.length / 2);
    const back = await decodeUrlState(encoded);
    expect(back.source).toEqual({ text: QWEN_TP2, name: 'qwen2-paral2_layer1-r0.py' });
  });

  it('keeps the other query parameters and the hash of the page URL', async () => {
    const href = await urlWithState(
      'http://127.0.0.1:4173/?test=1&agent=ws%3A%2F%2F127.0.0.1%3A7777#token=abc',
      {
        v: 1,
        source: { sample: 'pr-before' },
        steps: [],
      },
    );
    const url = new URL(href);
    expect(url.searchParams.get('test')).toBe('1');
    expect(url.searchParams.get('agent')).toBe('ws://127.0.0.1:7777');
    expect(url.hash).toBe('#token=abc');
    expect((await readUrlState(url))?.source).toEqual({ sample: 'pr-before' });
  });

  it('names what is wrong with a damaged link', async () => {
    await expect(decodeUrlState('abc$def')).rejects.toThrow(/character "\$" at offset 3/);
    await expect(decodeUrlState('AAAA')).rejects.toThrow(UrlStateError);
    const wrongShape = await encodeUrlState({
      v: 1,
      source: { sample: 'x' },
      steps: [{ pass: 3 }],
    } as unknown as UrlState);
    await expect(decodeUrlState(wrongShape)).rejects.toThrow(
      'state parameter: state.steps[0].pass is 3; expected one of noop-elimination, slice-hoist, moe-unpad, sequence-parallelism, async-tp, allreduce-rmsnorm',
    );
    expect(await readUrlState({ search: '?test=1' })).toBeNull();
  });

  it('checks every field against the schema: an unknown GPU, pass, view or field is refused by path', async () => {
    const base: UrlState = { v: 1, source: { sample: 'pr-before' }, steps: [] };
    const cases: [unknown, string][] = [
      [
        { ...base, gates: { gpu: 'ampere' } },
        'state.gates.gpu is "ampere"; expected one of hopper, blackwell',
      ],
      [
        { ...base, gates: { tokenGate: 'never' } },
        'state.gates.tokenGate is "never"; expected one of runtime-fallback, compile-range',
      ],
      [
        { ...base, gates: { worldSize: 2.5 } },
        'state.gates.worldSize is 2.5; expected an integer in [1, 4096]',
      ],
      [{ ...base, steps: [{ pass: 'fuse-all' }] }, 'state.steps[0].pass is "fuse-all"'],
      [{ ...base, steps: [{ pass: 'slice-hoist', site: 7 }] }, 'state.steps[0].site is 7, not text'],
      [{ ...base, view: { theme: 'neon' } }, 'state.view.theme is "neon"; expected one of light, dark'],
      [{ ...base, view: { layout: 'grid' } }, 'state.view.layout is "grid"'],
      [{ ...base, view: { tab: '__proto__' } }, 'state.view.tab is "__proto__"'],
      [{ ...base, extra: 1 }, 'state.extra is not a field of the state'],
      [
        { ...base, cost: { profile: 'TPU-v5' } },
        'state.cost.profile is "TPU-v5"; expected one of H100-NVLink',
      ],
      [{ ...base, cost: { tp: 0 } }, 'state.cost.tp is 0; expected an integer in [1, 64]'],
      [
        { ...base, run: { backend: 'cuda' } },
        'state.run.backend is "cuda"; expected one of webgpu, cpu, agent',
      ],
      [{ ...base, overlay: { metric: 'heat' } }, 'state.overlay.metric is "heat"; expected one of kind'],
      [{ ...base, overlay: { rank: 'min' } }, 'state.overlay.rank is "min"'],
      [{ ...base, source: { text: 'x' } }, 'state.source.name is undefined, not text'],
      [{ ...base, selected: {} }, 'state.selected is an object, not text'],
      [{ ...base, v: 2 }, 'state.v is 2, not 1'],
    ];
    for (const [state, message] of cases) {
      await expect(decodeUrlState(await encodeUrlState(state as UrlState))).rejects.toThrow(
        `state parameter: ${message}`,
      );
    }
  });

  it('refuses a deflate bomb once it inflates past the cap, without inflating the rest', async () => {
    // 256 MiB of one byte deflates to a link of a few hundred KB.
    const zeros = new Uint8Array(256 * 2 ** 20);
    const deflated = new Uint8Array(
      await new Response(
        new Blob([zeros]).stream().pipeThrough(new CompressionStream('deflate')),
      ).arrayBuffer(),
    );
    let bin = '';
    for (let i = 0; i < deflated.length; i += 0x8000)
      bin += String.fromCharCode(...deflated.subarray(i, i + 0x8000));
    const link = btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    await expect(decodeUrlState(link)).rejects.toThrow(
      `state parameter inflates to more than ${MAX_STATE_BYTES} bytes (the limit)`,
    );
  });

  it('puts a long state in the fragment, beside the agent token, and a huge one in local storage', async () => {
    const page = 'http://127.0.0.1:4173/?test=1&agent=ws%3A%2F%2F127.0.0.1%3A7777#token=abc';
    const short: UrlState = { v: 1, source: { sample: 'pr-before' }, steps: [] };
    const q = await placeUrlState(page, short);
    expect(q.place).toBe('query');
    // A real dump compresses past the query's budget: it goes in the fragment, the token stays readable.
    const long: UrlState = {
      v: 1,
      source: { text: MEGATRON_L8, name: 'gpt.py' },
      steps: [{ pass: 'slice-hoist' }],
    };
    const f = await placeUrlState(q.href, long);
    expect(f.place).toBe('fragment');
    const url = new URL(f.href);
    expect(url.searchParams.get('state')).toBeNull();
    expect(url.search.length).toBeLessThan(MAX_QUERY_STATE_CHARS);
    expect(agentAddressFromLocation(f.href)).toEqual({ url: 'ws://127.0.0.1:7777', token: 'abc' });
    expect(await readUrlState(url)).toEqual(long);
    // Back to a short state: it returns to the query and leaves the fragment to the token.
    const back = new URL((await placeUrlState(f.href, short)).href);
    expect(back.hash).toBe('#token=abc');
    expect(await readUrlState(back)).toEqual(short);

    // Past the fragment's budget (text that does not compress): local storage, named in the fragment.
    let seed = 1;
    const noise = Array.from({ length: 1_400_000 }, () =>
      String.fromCharCode(33 + ((seed = (seed * 48271) % 2147483647) % 90)),
    ).join('');
    const huge: UrlState = { v: 1, source: { text: noise, name: 'noise.py' }, steps: [] };
    const items = new Map<string, string>();
    const storage: StateStorage = {
      getItem: (k) => items.get(k) ?? null,
      setItem: (k, v) => void items.set(k, v),
      removeItem: (k) => void items.delete(k),
      key: (i) => [...items.keys()][i] ?? null,
      get length() {
        return items.size;
      },
    };
    items.set('fusionlab.state.old', 'x');
    const s = await placeUrlState(page, huge, storage);
    expect(s.place).toBe('storage');
    expect([...items.keys()]).toHaveLength(1);
    expect(new URL(s.href).hash).toMatch(/^#token=abc&stateKey=[a-z0-9]+$/);
    expect(await readUrlState(new URL(s.href), storage)).toEqual(huge);
    await expect(readUrlState(new URL(s.href), null)).rejects.toThrow(
      /kept in the storage of the browser that made it/,
    );
    // No storage at all: the link carries no state rather than one a server refuses.
    expect((await placeUrlState(page, huge, null)).place).toBe('none');
  });
});

describe('the view parameter', () => {
  it('round-trips a centre beside the state, and wins over a centre inside it', async () => {
    const centre = { node: 'all_reduce_2', dx: -12.5, dy: 3, k: 1.5 };
    expect(parseViewCentre(formatViewCentre(centre))).toEqual(centre);
    // A name with the separator in it still splits at the last one.
    expect(parseViewCentre('a@b@1,2,0.5')).toEqual({ node: 'a@b', dx: 1, dy: 2, k: 0.5 });
    const inside: UrlState = {
      v: 1,
      source: { sample: 'pr-before' },
      steps: [],
      view: { layout: 'single', centre: { node: 'x', dx: 0, dy: 0, k: 1 } },
    };
    const placed = await placeUrlState('http://h/?test=1', inside);
    const href = withViewCentre(placed.href, centre);
    const url = new URL(href);
    expect(url.searchParams.get(URL_VIEW_PARAM)).toBe('all_reduce_2@-12.5,3,1.5');
    expect((await readUrlState(url))?.view).toEqual({ layout: 'single', centre });
    // Removing it leaves the state's own.
    expect((await readUrlState(new URL(withViewCentre(href, null))))?.view?.centre).toEqual(
      inside.view!.centre,
    );
  });

  it('refuses a view that is not node@dx,dy,k, or out of range, by name', async () => {
    expect(() => parseViewCentre('all_reduce_2')).toThrow(/view parameter: .* is not node@dx,dy,k/);
    expect(() => parseViewCentre('n@1,2')).toThrow(/is not node@dx,dy,k/);
    expect(() => parseViewCentre('n@1,2,NaN')).toThrow(/view\.k/);
    expect(() => parseViewCentre('n@1,2,1e9')).toThrow(/view\.k/);
    expect(() => parseViewCentre('n@1e99,2,1')).toThrow(/view\.dx/);
    expect(() => parseViewCentre('@1,2,1')).toThrow(/is not node@dx,dy,k/);
    const placed = await placeUrlState('http://h/?test=1', { v: 1, source: { sample: 'x' }, steps: [] });
    const bad = new URL(placed.href);
    bad.searchParams.set(URL_VIEW_PARAM, 'n@zero,0,1');
    await expect(readUrlState(bad)).rejects.toThrow(/view\.dx/);
  });
});

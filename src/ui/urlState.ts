// The app's state as a URL: which graph (a sample id, or the pasted text itself), which rewrite
// steps were applied, the gates, the selection and the view. Compressed with the platform's
// CompressionStream (deflate) and base64url so a pasted 24-layer dump still fits in a link.
//
// Where it goes: a short state in `?state=`; a longer one in the fragment (`#state=`, beside an
// agent link's `#token=`), which the browser never sends to a server, so no server refuses the
// link for its length; one too long even for that is kept in this browser's local storage, and
// the fragment names it (`#stateKey=`). Reading a link trusts nothing: the inflated size is
// capped, and every field is checked against the schema below.

import type { Algorithm } from '../graph/cost/model.ts';
import { PROFILES } from '../graph/cost/profiles.ts';
import { DEFAULT_MAX_BYTES } from '../graph/errors.ts';
import { GPU_FAMILIES, TOKEN_GATES } from '../graph/passes/options.ts';
import { PASSES } from '../graph/passes/pipeline.ts';
import {
  VLLM_FLAGS,
  VLLM_NUMERIC_FIELDS,
  VLLM_PLATFORMS,
  type CompileRange,
  type OptimizationLevel,
} from '../graph/passes/vllmConfig.ts';
import type { PassConfigChoice } from './store/passConfigSlice.ts';
import type { BackendName } from '../runtime/backend.ts';
import { PRESETS, type PresetName } from '../runtime/presets.ts';
import { OVERLAY_METRICS, type OverlayMetric, type RankChoice } from './graph/overlay.ts';
import { MAX_CENTRE_OFFSET, ZOOM_EXTENT, type ViewCentre } from './graph/viewCentre.ts';
import { BOTTOM_TABS, LAYOUTS, THEMES, type BottomTab, type Layout, type Theme } from './store/viewSlice.ts';

export const URL_STATE_VERSION = 1;
/** Query parameter (and fragment parameter) holding the encoded state. */
export const URL_STATE_PARAM = 'state';
/**
 * Query parameter holding where the views look (`node@dx,dy,k`): apart from the state, because it
 * changes on every pan and the state (a pasted graph, deflated) is costly to write again.
 */
export const URL_VIEW_PARAM = 'view';
/** Fragment parameter naming a state kept in local storage. */
export const URL_STATE_KEY_PARAM = 'stateKey';
/** The longest state kept in the query: Node's HTTP servers (vite preview) refuse headers over 16 KiB, URL included. */
export const MAX_QUERY_STATE_CHARS = 8 * 1024;
/** The longest state kept in the fragment (Chromium keeps URLs up to 2 MB). */
export const MAX_FRAGMENT_STATE_CHARS = 1_500_000;
/** A link's state inflates to at most this: a pasted graph the importer takes, escaped as JSON, and the rest. */
export const MAX_STATE_BYTES = 2 * DEFAULT_MAX_BYTES;
const STORAGE_PREFIX = 'fusionlab.state.';

export interface RewriteStep {
  pass: string;
  /** One site (the node a match is anchored at); absent means every site the pass finds. */
  site?: string;
}

export interface UrlState {
  v: typeof URL_STATE_VERSION;
  /** A built-in sample id, or the FX/JSON text the user pasted or dropped. */
  source: { sample: string } | { text: string; name: string };
  steps: RewriteStep[];
  gates?: {
    worldSize?: number;
    maxTokens?: number;
    gpu?: (typeof GPU_FAMILIES)[number];
    tokenGate?: (typeof TOKEN_GATES)[number];
    tpGroup?: string;
  };
  /** vLLM's PassConfig (level, platform, flags, custom ops, compile range): null or absent when off. */
  passConfig?: PassConfigChoice | null;
  /** The cost model's controls: a link reopens the same prediction (B200 −4.42 % stays B200 −4.42 %). */
  cost?: { profile?: string; tokens?: number; tp?: number | null; algorithm?: Algorithm };
  /** The Run form: what the next run measures, so a shared link runs what its maker ran. */
  run?: {
    backend?: BackendName;
    ranks?: number;
    preset?: PresetName;
    dtype?: 'bf16' | 'f32' | 'f16';
    allreduce?: Algorithm;
    timedRuns?: number;
  };
  /** What the node fills show (the colour overlay) and for which rank. */
  overlay?: { metric?: OverlayMetric; rank?: RankChoice };
  selected?: string | null;
  /** `centre`: where the graph views look (see viewCentre.ts), in the shown stage's graph. */
  view?: { layout?: Layout; tab?: BottomTab; theme?: Theme; centre?: ViewCentre };
}

export class UrlStateError extends Error {
  override name = 'UrlStateError';
}

// ---- the schema ----------------------------------------------------------------------------
// A check takes a value and its path in the state and returns it typed, or throws naming the path.
// Adding a field to UrlState is one line here; `Check<UrlState>` makes the compiler ask for it.

type Check<T> = (x: unknown, path: string) => T;

function refuse(path: string, what: string): never {
  throw new UrlStateError(`state parameter: ${path} ${what}`);
}
function show(x: unknown): string {
  const s =
    typeof x === 'string'
      ? JSON.stringify(x)
      : Array.isArray(x)
        ? 'a list'
        : x === null
          ? 'null'
          : typeof x === 'object'
            ? 'an object'
            : String(x);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
const text =
  (max: number): Check<string> =>
  (x, p) =>
    typeof x === 'string' && x.length <= max
      ? x
      : refuse(p, typeof x === 'string' ? `is longer than ${max} characters` : `is ${show(x)}, not text`);
const member =
  <T extends string>(values: readonly T[]): Check<T> =>
  (x, p) =>
    (values as readonly unknown[]).includes(x)
      ? (x as T)
      : refuse(p, `is ${show(x)}; expected one of ${values.join(', ')}`);
/** A number in [lo, hi] of a kind (`whole`: an integer, else any finite number). */
const inRange =
  (whole: boolean) =>
  (lo: number, hi: number): Check<number> =>
  (x, p) =>
    typeof x === 'number' && (whole ? Number.isInteger(x) : Number.isFinite(x)) && x >= lo && x <= hi
      ? x
      : refuse(p, `is ${show(x)}; expected ${whole ? 'an integer' : 'a number'} in [${lo}, ${hi}]`);
const integer = inRange(true);
const finite = inRange(false);
const literal =
  <T>(v: T): Check<T> =>
  (x, p) =>
    x === v ? v : refuse(p, `is ${show(x)}, not ${show(v)}`);
const optional =
  <T>(c: Check<T>): Check<T | undefined> =>
  (x, p) =>
    x === undefined ? undefined : c(x, p);
const nullable =
  <T>(c: Check<T>): Check<T | null> =>
  (x, p) =>
    x === null ? null : c(x, p);
const list =
  <T>(c: Check<T>, max: number): Check<T[]> =>
  (x, p) => {
    if (!Array.isArray(x)) refuse(p, `is ${show(x)}, not a list`);
    if (x.length > max) refuse(p, `has ${x.length} entries; at most ${max}`);
    return x.map((v, i) => c(v, `${p}[${i}]`));
  };
type Shape<T> = { [K in keyof T]-?: Check<T[K]> };
/** An object with exactly these fields (a field absent is undefined); unknown fields are refused. */
const record =
  <T>(shape: Shape<T>): Check<T> =>
  (x, p) => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) refuse(p, `is ${show(x)}, not an object`);
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o))
      if (!(k in shape)) refuse(`${p}.${k.slice(0, 40)}`, 'is not a field of the state');
    const out: Record<string, unknown> = {};
    for (const k in shape) {
      const v = shape[k](o[k], `${p}.${k}`);
      if (v !== undefined) out[k] = v;
    }
    return out as T;
  };

const oneOf =
  <T>(...checks: Check<T>[]): Check<T> =>
  (x, p) => {
    let last: unknown;
    for (const c of checks) {
      try {
        return c(x, p);
      } catch (e) {
        last = e;
      }
    }
    throw last;
  };

/** Records, so a new algorithm or backend is a type error here until the link can carry it. */
const ALGORITHMS = Object.keys({ ring: 1, 'one-shot': 1, 'two-shot': 1 } satisfies Record<
  Algorithm,
  1
>) as Algorithm[];
const BACKENDS = Object.keys({ webgpu: 1, cpu: 1, agent: 1 } satisfies Record<
  BackendName,
  1
>) as BackendName[];
const DTYPES = Object.keys({ bf16: 1, f32: 1, f16: 1 } satisfies Record<
  NonNullable<NonNullable<UrlState['run']>['dtype']>,
  1
>) as NonNullable<NonNullable<UrlState['run']>['dtype']>[];
const MAX_RANKS = 64;

const NAME_MAX = 256;
const nodeName = text(NAME_MAX);

const SOURCE: Check<UrlState['source']> = (x, p) =>
  typeof x === 'object' && x !== null && 'sample' in x
    ? record<{ sample: string }>({ sample: text(NAME_MAX) })(x, p)
    : record<{ text: string; name: string }>({ text: text(DEFAULT_MAX_BYTES), name: text(NAME_MAX) })(x, p);

const CENTRE: Check<ViewCentre> = record<ViewCentre>({
  node: nodeName,
  dx: finite(-MAX_CENTRE_OFFSET, MAX_CENTRE_OFFSET),
  dy: finite(-MAX_CENTRE_OFFSET, MAX_CENTRE_OFFSET),
  k: finite(...ZOOM_EXTENT),
});

const bool: Check<boolean> = (x, p) =>
  typeof x === 'boolean' ? x : refuse(p, `is ${show(x)}, not true or false`);

const MAX_TOKENS = 2 ** 31 - 1;
const RANGE: Check<CompileRange> = (x, p) => {
  const r = record<CompileRange>({ start: integer(1, MAX_TOKENS), end: integer(1, MAX_TOKENS) })(x, p);
  return r.end >= r.start ? r : refuse(`${p}.end`, `is ${r.end}, below start ${r.start}`);
};
const PASS_CONFIG: Check<PassConfigChoice> = record<PassConfigChoice>({
  level: (x, p) => integer(0, 3)(x, p) as OptimizationLevel,
  platform: member(VLLM_PLATFORMS),
  tp: integer(1, 4096),
  flags: record(
    Object.fromEntries(VLLM_FLAGS.map((f) => [f, optional(bool)])) as Shape<PassConfigChoice['flags']>,
  ),
  customOps: list(text(NAME_MAX), 64),
  numbers: record(
    Object.fromEntries(VLLM_NUMERIC_FIELDS.map((f) => [f, optional(finite(0, MAX_TOKENS))])) as Shape<
      PassConfigChoice['numbers']
    >,
  ),
  maxNumBatchedTokens: optional(integer(1, MAX_TOKENS)),
  rangeEndpoints: list(integer(1, MAX_TOKENS), 64),
  range: nullable(RANGE),
});

export const URL_STATE_SCHEMA: Check<UrlState> = record<UrlState>({
  v: literal(URL_STATE_VERSION),
  source: SOURCE,
  steps: list(record<RewriteStep>({ pass: member(Object.keys(PASSES)), site: optional(nodeName) }), 256),
  gates: optional(
    record<NonNullable<UrlState['gates']>>({
      worldSize: optional(integer(1, 4096)),
      maxTokens: optional(integer(1, 2 ** 31 - 1)),
      gpu: optional(member(GPU_FAMILIES)),
      tokenGate: optional(member(TOKEN_GATES)),
      tpGroup: optional(text(NAME_MAX)),
    }),
  ),
  passConfig: optional(nullable(PASS_CONFIG)),
  cost: optional(
    record<NonNullable<UrlState['cost']>>({
      profile: optional(member(Object.keys(PROFILES))),
      tokens: optional(integer(1, 2 ** 31 - 1)),
      tp: optional(nullable(integer(1, MAX_RANKS))),
      algorithm: optional(member(ALGORITHMS)),
    }),
  ),
  run: optional(
    record<NonNullable<UrlState['run']>>({
      backend: optional(member(BACKENDS)),
      ranks: optional(integer(1, MAX_RANKS)),
      preset: optional(member(Object.keys(PRESETS) as PresetName[])),
      dtype: optional(member(DTYPES)),
      allreduce: optional(member(ALGORITHMS)),
      timedRuns: optional(integer(1, 100)),
    }),
  ),
  overlay: optional(
    record<NonNullable<UrlState['overlay']>>({
      metric: optional(member(OVERLAY_METRICS)),
      rank: optional(oneOf<RankChoice>(literal('max'), integer(0, MAX_RANKS - 1))),
    }),
  ),
  selected: optional(nullable(nodeName)),
  view: optional(
    record<NonNullable<UrlState['view']>>({
      layout: optional(member(LAYOUTS)),
      tab: optional(member(BOTTOM_TABS)),
      theme: optional(member(THEMES)),
      centre: optional(CENTRE),
    }),
  ),
});

/** Shape check: a hand-edited or truncated link must give a clear error, not a broken app. */
export function checkUrlState(x: unknown): UrlState {
  return URL_STATE_SCHEMA(x, 'state');
}

// ---- encoding ------------------------------------------------------------------------------

async function pipe(bytes: Uint8Array, stream: CompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

/** Compressed bytes fed to the inflater at a time: deflate expands at most ~1,000×, so one step makes ≤ 1 MB. */
const INFLATE_STEP = 1024;
/** Inflated bytes between two yields to the page's event loop (a few ms of work). */
const YIELD_EVERY_BYTES = 2 * 2 ** 20;

/**
 * Inflates step by step and stops past `cap` bytes, so a deflate bomb costs the cap, not its size,
 * and no single step (one task on the page's thread) inflates more than about a megabyte.
 */
async function inflateCapped(bytes: Uint8Array, cap: number): Promise<Uint8Array> {
  const stream = new DecompressionStream('deflate');
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const feeding = (async () => {
    for (let i = 0; i < bytes.length; i += INFLATE_STEP)
      await writer.write(bytes.subarray(i, i + INFLATE_STEP) as Uint8Array<ArrayBuffer>);
    await writer.close();
  })();
  feeding.catch(() => {}); // a failure shows in the reads too
  const chunks: Uint8Array[] = [];
  let total = 0;
  let sinceYield = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    sinceYield += value.length;
    // Reads and writes settle as microtasks, all in one task: give the page its thread back now and then.
    if (sinceYield > YIELD_EVERY_BYTES) {
      sinceYield = 0;
      await new Promise((r) => setTimeout(r, 0));
    }
    if (total > cap) {
      void reader.cancel().catch(() => {});
      void writer.abort().catch(() => {});
      throw new UrlStateError(
        `state parameter inflates to more than ${cap} bytes (the limit); the link is damaged or not from fusionlab`,
      );
    }
    chunks.push(value);
  }
  await feeding;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) {
    const at = text.search(/[^A-Za-z0-9_-]/);
    throw new UrlStateError(
      `state parameter: character ${JSON.stringify(text[at])} at offset ${at} is not base64url`,
    );
  }
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export async function encodeUrlState(state: UrlState): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(state));
  return toBase64Url(await pipe(json, new CompressionStream('deflate')));
}

/** User Timing marks around reading a link's state, so a profile (or a test) can find that span. */
export const DECODE_MARKS = {
  start: 'fusionlab:state-decode-start',
  end: 'fusionlab:state-decode-end',
} as const;

export async function decodeUrlState(encoded: string): Promise<UrlState> {
  performance.mark(DECODE_MARKS.start);
  try {
    return await decodeChecked(encoded);
  } finally {
    performance.mark(DECODE_MARKS.end);
  }
}

async function decodeChecked(encoded: string): Promise<UrlState> {
  let text: string;
  try {
    text = new TextDecoder().decode(await inflateCapped(fromBase64Url(encoded), MAX_STATE_BYTES));
  } catch (e) {
    if (e instanceof UrlStateError) throw e;
    throw new UrlStateError(
      `state parameter (${encoded.length} chars) is not deflate data: ${(e as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UrlStateError(
      `state parameter decodes to invalid JSON: ${(e as Error).message.split('\n')[0].slice(0, 120)}`,
    );
  }
  return checkUrlState(parsed);
}

// ---- where the state lives -----------------------------------------------------------------

/** The part of local storage the state uses (window.localStorage in the app; absent where storage is off). */
export type StateStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key' | 'length'>;

const fragmentParams = (hash: string) => new URLSearchParams(hash.replace(/^#/, ''));

/** The state a link carries: `?state=`, `#state=`, or `#stateKey=` into local storage; null when it has none. */
/** The view parameter's text for a centre. */
export function formatViewCentre(c: ViewCentre): string {
  return `${c.node}@${c.dx},${c.dy},${c.k}`;
}

/** A view parameter read back, checked as the state's own `view.centre` would be. */
export function parseViewCentre(text: string): ViewCentre {
  const at = text.lastIndexOf('@');
  const nums = at < 0 ? [] : text.slice(at + 1).split(',');
  if (at <= 0 || nums.length !== 3)
    throw new UrlStateError(`view parameter: ${show(text.slice(0, 80))} is not node@dx,dy,k`);
  const [dx, dy, k] = nums.map((n) => (/^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(n) ? Number(n) : n));
  return CENTRE({ node: text.slice(0, at), dx, dy, k }, 'view');
}

/** `href` with its view parameter set to `centre`, or removed. */
export function withViewCentre(href: string, centre: ViewCentre | null | undefined): string {
  const url = new URL(href);
  if (centre) url.searchParams.set(URL_VIEW_PARAM, formatViewCentre(centre));
  else url.searchParams.delete(URL_VIEW_PARAM);
  return url.toString();
}

/** The link's state, with its view parameter (which wins over a centre inside the state) folded in. */
export async function readUrlState(
  location: { search: string; hash?: string },
  storage?: StateStorage | null,
): Promise<UrlState | null> {
  const state = await readStateParam(location, storage);
  const view = new URLSearchParams(location.search).get(URL_VIEW_PARAM);
  if (!state || view === null) return state;
  return { ...state, view: { ...state.view, centre: parseViewCentre(view) } };
}

async function readStateParam(
  location: { search: string; hash?: string },
  storage?: StateStorage | null,
): Promise<UrlState | null> {
  const query = new URLSearchParams(location.search).get(URL_STATE_PARAM);
  if (query) return decodeUrlState(query);
  const fragment = fragmentParams(location.hash ?? '');
  const inFragment = fragment.get(URL_STATE_PARAM);
  if (inFragment) return decodeUrlState(inFragment);
  const key = fragment.get(URL_STATE_KEY_PARAM);
  if (!key) return null;
  const stored = /^[a-z0-9]{1,16}$/.test(key) ? storage?.getItem(STORAGE_PREFIX + key) : null;
  if (!stored)
    throw new UrlStateError(
      `the link's state (${key.slice(0, 16)}) was kept in the storage of the browser that made it, and this one does not have it`,
    );
  return decodeUrlState(stored);
}

export type StatePlace = 'query' | 'fragment' | 'storage' | 'none';

/** FNV-1a, 32 bits, as base 36: a short name for a stored state. */
function stateKey(encoded: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < encoded.length; i++) h = Math.imul(h ^ encoded.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/**
 * The URL with its state put where it fits (see the header); other parameters (`test`, `agent`)
 * and the fragment's other parameters (`token`) kept. `place` says where the state went; 'none'
 * when it fits nowhere (no storage, or storage full): the URL then carries no state.
 */
export async function placeUrlState(
  href: string,
  state: UrlState,
  storage?: StateStorage | null,
): Promise<{ href: string; place: StatePlace }> {
  const encoded = await encodeUrlState(state);
  const url = new URL(href);
  const fragment = fragmentParams(url.hash);
  url.searchParams.delete(URL_STATE_PARAM);
  fragment.delete(URL_STATE_PARAM);
  fragment.delete(URL_STATE_KEY_PARAM);
  let place: StatePlace;
  if (encoded.length <= MAX_QUERY_STATE_CHARS) {
    url.searchParams.set(URL_STATE_PARAM, encoded);
    place = 'query';
  } else if (encoded.length <= MAX_FRAGMENT_STATE_CHARS) {
    fragment.set(URL_STATE_PARAM, encoded);
    place = 'fragment';
  } else {
    place = storeState(encoded, storage, fragment) ? 'storage' : 'none';
  }
  const hash = fragment.toString();
  url.hash = hash ? `#${hash}` : '';
  return { href: url.toString(), place };
}

/** Keeps one state in storage (older ones are removed, so the storage does not fill up). */
function storeState(
  encoded: string,
  storage: StateStorage | null | undefined,
  fragment: URLSearchParams,
): boolean {
  if (!storage) return false;
  const key = stateKey(encoded);
  try {
    for (let i = storage.length - 1; i >= 0; i--) {
      const k = storage.key(i);
      if (k?.startsWith(STORAGE_PREFIX) && k !== STORAGE_PREFIX + key) storage.removeItem(k);
    }
    storage.setItem(STORAGE_PREFIX + key, encoded);
  } catch {
    return false; // quota exceeded, or storage disabled
  }
  fragment.set(URL_STATE_KEY_PARAM, key);
  return true;
}

/** The URL with its state placed (see placeUrlState). */
export async function urlWithState(
  href: string,
  state: UrlState,
  storage?: StateStorage | null,
): Promise<string> {
  return (await placeUrlState(href, state, storage)).href;
}

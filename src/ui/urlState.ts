// The app's state as a URL: which graph (a sample id, or the pasted text itself), which rewrite
// steps were applied, the gates, the selection and the view. Compressed with the platform's
// CompressionStream (deflate) and base64url so a pasted 24-layer dump still fits in a link.

export const URL_STATE_VERSION = 1;
/** Query parameter holding the encoded state (the hash is left to `#token=` of agent links). */
export const URL_STATE_PARAM = 'state';

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
  gates?: { worldSize?: number; maxTokens?: number; gpu?: string; tokenGate?: string; tpGroup?: string };
  selected?: string | null;
  view?: { layout?: string; tab?: string; theme?: string };
}

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) {
    const at = text.search(/[^A-Za-z0-9_-]/);
    throw new UrlStateError(`state parameter: character ${JSON.stringify(text[at])} at offset ${at} is not base64url`);
  }
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export class UrlStateError extends Error {
  override name = 'UrlStateError';
}

export async function encodeUrlState(state: UrlState): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(state));
  return toBase64Url(await pipe(json, new CompressionStream('deflate')));
}

export async function decodeUrlState(encoded: string): Promise<UrlState> {
  let text: string;
  try {
    text = new TextDecoder().decode(await pipe(fromBase64Url(encoded), new DecompressionStream('deflate')));
  } catch (e) {
    if (e instanceof UrlStateError) throw e;
    throw new UrlStateError(`state parameter (${encoded.length} chars) is not deflate data: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UrlStateError(`state parameter decodes to invalid JSON: ${(e as Error).message}`);
  }
  return checkUrlState(parsed);
}

/** Shape check: a hand-edited or truncated link must give a clear error, not a broken app. */
export function checkUrlState(x: unknown): UrlState {
  const fail = (what: string): never => { throw new UrlStateError(`state parameter: ${what}`); };
  if (!x || typeof x !== 'object') fail('not an object');
  const o = x as Record<string, unknown>;
  if (o.v !== URL_STATE_VERSION) fail(`version ${JSON.stringify(o.v)} is not ${URL_STATE_VERSION}`);
  const src = o.source as Record<string, unknown> | undefined;
  if (!src || typeof src !== 'object') fail('source is missing');
  else if (!(typeof src.sample === 'string' || (typeof src.text === 'string' && typeof src.name === 'string'))) {
    fail('source must hold a sample id or text + name');
  }
  if (!Array.isArray(o.steps)) fail('steps is not a list');
  (o.steps as unknown[]).forEach((s, i) => {
    const step = s as Record<string, unknown>;
    if (!step || typeof step.pass !== 'string') fail(`steps[${i}] has no pass name`);
    if (step.site !== undefined && typeof step.site !== 'string') fail(`steps[${i}].site is not a node name`);
  });
  if (o.selected !== undefined && o.selected !== null && typeof o.selected !== 'string') fail('selected is not a node name');
  return o as unknown as UrlState;
}

export async function readUrlState(location: { search: string }): Promise<UrlState | null> {
  const encoded = new URLSearchParams(location.search).get(URL_STATE_PARAM);
  return encoded ? decodeUrlState(encoded) : null;
}

/** The URL with its state parameter replaced; other parameters (`test`, `agent`) and the hash kept. */
export async function urlWithState(href: string, state: UrlState): Promise<string> {
  const url = new URL(href);
  url.searchParams.set(URL_STATE_PARAM, await encodeUrlState(state));
  return url.toString();
}

// Every text format a graph can be imported from, Netron-style: one entry per format with a
// cheap `match` on the text and an `open` that parses it. Adding a format is one importer file
// and one line in FORMATS.

import { checkInputSize, DEFAULT_MAX_BYTES, type ImportWarning } from './errors.ts';
import { parseFx } from './fx/parse.ts';
import type { Graph } from './ir.ts';
import { graphFromJsonText } from './json.ts';

export type FormatId = 'fx' | 'fx-graph' | 'json';

export interface ImportOptions {
  fileName?: string;
  maxBytes?: number;
  maxNodes?: number;
}

export interface ImportResult {
  graph: Graph;
  warnings: ImportWarning[];
  format: FormatId;
}

export interface GraphFormat {
  id: FormatId;
  /** Shown in the UI's open dialog. */
  description: string;
  /** Looks only at the start of the text. */
  match(text: string): boolean;
  open(text: string, opts: ImportOptions): { graph: Graph; warnings: ImportWarning[] };
}

/** The first line that is neither blank nor a comment, without its indentation. */
function firstContentLine(text: string): string {
  let i = 0;
  // A bounded look: formats announce themselves in their first lines.
  for (let lines = 0; lines < 200 && i < text.length; lines++) {
    let end = text.indexOf('\n', i);
    if (end < 0) end = text.length;
    const line = text.slice(i, Math.min(end, i + 256)).trim();
    if (line && !line.startsWith('#')) return line;
    i = end + 1;
  }
  return '';
}

export const FORMATS: GraphFormat[] = [
  {
    id: 'json',
    description: `fusionlab graph JSON (fusionlab.graph/1)`,
    match: (text) => text.trimStart().startsWith('{'),
    open: (text, opts) => ({ graph: graphFromJsonText(text, opts), warnings: [] }),
  },
  {
    id: 'fx-graph',
    description: 'str(graph): graph():, %name : [num_users=N] = call_function[target=…](…)',
    match: (text) => /^graph\s*\(/.test(firstContentLine(text)),
    open: (text, opts) => parseFx(text, opts),
  },
  {
    id: 'fx',
    description: 'FX text: print_readable modules, submodules, and bare node-line fragments',
    match: () => true,
    open: (text, opts) => parseFx(text, opts),
  },
];

export function importGraph(text: string, opts: ImportOptions = {}): ImportResult {
  checkInputSize(text, opts.maxBytes ?? DEFAULT_MAX_BYTES, opts.fileName);
  const format = FORMATS.find((f) => f.match(text)) ?? FORMATS[FORMATS.length - 1];
  const { graph, warnings } = format.open(text, opts);
  return { graph, warnings, format: format.id };
}

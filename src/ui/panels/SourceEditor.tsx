// The FX text of the graph: edit or paste, import, and — when import fails — the text with the
// failing line highlighted and a caret under the column the importer named.

import { useEffect, useRef } from 'react';
import { useStore } from '../store/index.ts';

function ErrorView({ text, line, col, message, onEdit }: { text: string; line?: number; col?: number; message: string; onEdit: () => void }) {
  const lines = text.split('\n');
  const errorRow = useRef<HTMLDivElement>(null);
  useEffect(() => {
    errorRow.current?.scrollIntoView({ block: 'center' });
  }, [line, text]);
  return (
    <div className="source-error">
      <div className="error-banner" role="alert" data-testid="import-error">
        <strong>Import failed{line !== undefined ? ` at line ${line}, column ${col ?? 1}` : ''}:</strong> {message}
        <button type="button" onClick={onEdit}>Edit text</button>
      </div>
      <div className="code-view" aria-label="Source with error">
        {lines.map((l, i) => {
          const isError = line === i + 1;
          return (
            <div key={i} ref={isError ? errorRow : undefined} className={`code-line${isError ? ' error-line' : ''}`} data-line={i + 1}>
              <span className="gutter">{i + 1}</span>
              <span className="code">{l || ' '}</span>
              {isError && col !== undefined && (
                <div className="caret-row" aria-hidden="true"><span className="gutter" /><span className="code">{' '.repeat(Math.max(0, col - 1))}^</span></div>
              )}
            </div>
          );
        })}
      </div>
    </div>
  );
}

export function SourceEditor() {
  const sourceText = useStore((s) => s.sourceText);
  const sourceName = useStore((s) => s.sourceName);
  const importError = useStore((s) => s.importError);
  const warnings = useStore((s) => s.warnings);
  const loadText = useStore((s) => s.loadText);
  const clearImportError = useStore((s) => s.clearImportError);
  const draft = useStore((s) => s.draft);
  const setDraft = useStore((s) => s.setDraft);
  const text = draft ?? sourceText;

  if (importError) {
    return (
      <ErrorView
        text={importError.text}
        line={importError.line}
        col={importError.col}
        message={importError.message}
        onEdit={() => { setDraft(importError.text); clearImportError(); }}
      />
    );
  }
  return (
    <div className="source-editor">
      <div className="source-toolbar">
        <span className="muted">{draft === null ? sourceName : 'edited — not imported yet'}</span>
        {warnings.length > 0 && <span className="warn" title={warnings.join('\n')}>{warnings.length} warning{warnings.length > 1 ? 's' : ''}</span>}
        <span className="spacer" />
        {draft !== null && <button type="button" onClick={() => setDraft(null)}>Revert</button>}
        <button type="button" onClick={() => setDraft('')}>Clear</button>
        <button
          type="button"
          className="primary"
          disabled={draft === null}
          onClick={() => {
            if (draft === null) return;
            loadText(draft, 'pasted.py');
          }}
        >Import</button>
      </div>
      <textarea
        aria-label="FX source"
        spellCheck={false}
        value={text}
        placeholder="Paste FX text: a print_readable() module, a fragment from a PR, or str(graph)."
        onChange={(e) => setDraft(e.target.value)}
      />
    </div>
  );
}

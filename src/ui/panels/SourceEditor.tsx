// The FX text of the graph: edit or paste, import, and — when import fails — the text with the
// failing line highlighted and a caret under the column the importer named, scrolled into view.

import { useEffect, useLayoutEffect, useMemo, useRef, useState, type ClipboardEvent } from 'react';
import { useStore } from '../store/index.ts';
import { lineStarts, shownLine, visibleRows } from './sourceWindow.ts';

/** Each row's height; fixed, so a row's place is its index times this (the CSS does not decide it). */
const ROW_PX = 17;

/**
 * Only the rows in view (and a margin) are in the DOM, so a 50 MB paste costs one pass over its
 * newlines, not 600,000 rows. The caret under the error column is a row of its own.
 */
function CodeWindow({
  text,
  line,
  col,
  label,
}: {
  text: string;
  line?: number;
  col?: number;
  label: string;
}) {
  const starts = useMemo(() => lineStarts(text), [text]);
  const errorIndex = line !== undefined && line >= 1 && line <= starts.length ? line - 1 : undefined;
  const caretRow = errorIndex !== undefined && col !== undefined ? errorIndex + 1 : undefined;
  const rows = starts.length + (caretRow !== undefined ? 1 : 0);
  const view = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 0 });
  useLayoutEffect(() => {
    const el = view.current;
    if (!el) return;
    // The error line (and its caret) in the middle of the view.
    if (errorIndex !== undefined) el.scrollTop = Math.max(0, (errorIndex + 1) * ROW_PX - el.clientHeight / 2);
    setScroll({ top: el.scrollTop, height: el.clientHeight });
  }, [text, errorIndex]);
  const [from, to] = visibleRows(scroll.top, scroll.height || 600, ROW_PX, rows);
  const shown = [];
  for (let r = from; r < to; r++) {
    if (r === caretRow) {
      const { caret } = shownLine(text, starts, errorIndex!, col);
      shown.push(
        <div key="caret" className="caret-row" aria-hidden="true" style={{ height: ROW_PX }}>
          <span className="gutter" />
          <span className="code">{' '.repeat(Math.max(0, caret ?? 0))}^</span>
        </div>,
      );
      continue;
    }
    const i = caretRow !== undefined && r > errorIndex! ? r - 1 : r;
    const isError = i === errorIndex;
    shown.push(
      <div
        key={i}
        className={`code-line${isError ? ' error-line' : ''}`}
        data-line={i + 1}
        style={{ height: ROW_PX }}
      >
        <span className="gutter">{i + 1}</span>
        <span className="code">{shownLine(text, starts, i, isError ? col : undefined).text || ' '}</span>
      </div>,
    );
  }
  return (
    <div
      className="code-view"
      ref={view}
      aria-label={label}
      tabIndex={0}
      data-lines={starts.length}
      onScroll={(e) => setScroll({ top: e.currentTarget.scrollTop, height: e.currentTarget.clientHeight })}
    >
      <div style={{ height: rows * ROW_PX, position: 'relative' }}>
        <div style={{ position: 'absolute', top: from * ROW_PX, left: 0, right: 0 }}>{shown}</div>
      </div>
    </div>
  );
}

function ErrorView({
  text,
  line,
  col,
  message,
  onEdit,
}: {
  text: string;
  line?: number;
  col?: number;
  message: string;
  onEdit: () => void;
}) {
  return (
    <div className="source-error">
      <div className="error-banner" role="alert" data-testid="import-error">
        <strong>Import failed{line !== undefined ? ` at line ${line}, column ${col ?? 1}` : ''}:</strong>{' '}
        {message}
        <button type="button" onClick={onEdit}>
          Edit text
        </button>
      </div>
      <CodeWindow text={text} line={line} col={col} label="Source with error" />
    </div>
  );
}

/**
 * A source longer than this shows as a window of rows until the user asks to edit it: a textarea
 * holding the 300-layer sample's 2 MB takes the browser over a second to lay out.
 */
export const EDIT_IN_PLACE_CHARS = 200_000;

/**
 * What this page may do with the async Clipboard API: read without asking ('granted'), ask the
 * user on the next paste ('prompt'), or not at all ('denied'; also a browser without the
 * permission, e.g. Firefox). Kept up to date as the permission changes.
 */
export type ClipboardAccess = 'granted' | 'prompt' | 'denied';

function useClipboardAccess(): ClipboardAccess {
  const [access, setAccess] = useState<ClipboardAccess>('denied');
  useEffect(() => {
    let status: PermissionStatus | null = null;
    const update = () =>
      setAccess(
        status && typeof navigator.clipboard?.read === 'function' && status.state !== 'denied'
          ? (status.state as 'granted' | 'prompt')
          : 'denied',
      );
    navigator.permissions
      ?.query({ name: 'clipboard-read' as PermissionName })
      .then((st) => {
        status = st;
        st.addEventListener('change', update);
        update();
      })
      .catch(() => {}); // a browser without this permission: the paste event's own data is read
    return () => status?.removeEventListener('change', update);
  }, []);
  return access;
}

/** The clipboard's plain text as a blob (undefined when it holds none). */
async function pastedBlob(): Promise<Blob | undefined> {
  for (const item of await navigator.clipboard.read())
    if (item.types.includes('text/plain')) return item.getType('text/plain');
  return undefined;
}

/** Said under the paste box where a paste can only be read all at once, on the page's thread. */
export const BLOCKING_PASTE_NOTE =
  'This page may not read the clipboard, so a paste arrives all at once: a paste of several MB stops the tab for seconds. Open or drop a large file instead.';

/**
 * The paste box's handler. Where the page may read the clipboard (or may ask to), the paste is
 * read as a blob through the async Clipboard API (off the page's thread; its size known before a
 * character is decoded): the paste event's own data is read synchronously — 4–15 s of frozen tab
 * for 50 MB, whether through getData or a DataTransferItem. A paste longer than the textarea lays
 * out at once is a whole graph: imported as a dropped file is (in the pipeline worker) and shown
 * read-only; a shorter one goes in at the caret. Refused the permission, the next paste reads the
 * event's own data, and the box says what that costs.
 */
function usePasteHandler(): {
  onPaste: (e: ClipboardEvent<HTMLTextAreaElement>) => void;
  blocking: boolean;
} {
  const access = useClipboardAccess();
  // Asked once and refused (a prompt dismissed counts): never ask again in this page.
  const [refused, setRefused] = useState(false);
  const loadText = useStore((s) => s.loadText);
  const loadBlob = useStore((s) => s.loadBlob);
  const setDraft = useStore((s) => s.setDraft);
  const setWork = useStore((s) => s.setWork);
  const setNotice = useStore((s) => s.setNotice);
  const readAsync = access === 'granted' || (access === 'prompt' && !refused);
  /** Text pasted at the caret (over the selection), as the textarea itself would. */
  const insertPaste = (pasted: string, current: string, [from, to]: readonly [number, number]) =>
    setDraft(current.slice(0, from) + pasted + current.slice(to));
  const onPaste = (e: ClipboardEvent<HTMLTextAreaElement>) => {
    if (readAsync) {
      e.preventDefault();
      const el = e.currentTarget;
      const at = [el.selectionStart, el.selectionEnd] as const;
      setWork({ label: 'reading the pasted text', fraction: null });
      void pastedBlob().then(
        async (blob) => {
          setWork(null);
          if (!blob) return;
          if (blob.size > EDIT_IN_PLACE_CHARS) await loadBlob(blob, 'pasted.py');
          else insertPaste(await blob.text(), el.value, at);
        },
        () => {
          // Refused (now, or withdrawn meanwhile): nothing was pasted; the next paste is read as
          // the browser hands it over.
          setWork(null);
          setRefused(true);
          setNotice('Clipboard access refused: nothing pasted. Paste again to paste the text itself.', true);
        },
      );
      return;
    }
    // Without that permission the paste event's own data is all there is.
    const pasted = e.clipboardData.getData('text/plain');
    if (pasted.length <= EDIT_IN_PLACE_CHARS) return;
    e.preventDefault();
    void loadText(pasted, 'pasted.py');
  };
  return { onPaste, blocking: !readAsync };
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
  const { onPaste, blocking } = usePasteHandler();

  if (importError) {
    return (
      <ErrorView
        text={importError.text}
        line={importError.line}
        col={importError.col}
        message={importError.message}
        onEdit={() => {
          setDraft(importError.text);
          clearImportError();
        }}
      />
    );
  }
  return (
    <div className="source-editor">
      <div className="source-toolbar">
        <span className="muted">{draft === null ? sourceName : 'edited — not imported yet'}</span>
        {warnings.length > 0 && (
          <span className="warn" title={warnings.join('\n')}>
            {warnings.length} warning{warnings.length > 1 ? 's' : ''}
          </span>
        )}
        <span className="spacer" />
        {draft !== null && (
          <button type="button" onClick={() => setDraft(null)}>
            Revert
          </button>
        )}
        <button type="button" onClick={() => setDraft('')}>
          Clear
        </button>
        <button
          type="button"
          className="primary"
          disabled={draft === null}
          onClick={() => {
            if (draft === null) return;
            loadText(draft, 'pasted.py');
          }}
        >
          Import
        </button>
      </div>
      {draft === null && sourceText.length > EDIT_IN_PLACE_CHARS ? (
        <>
          <p className="muted source-note">
            {`${sourceText.length.toLocaleString('en-US')} characters: shown read-only, a window of lines at a time.`}{' '}
            <button type="button" className="linklike" onClick={() => setDraft(sourceText)}>
              Edit text
            </button>
          </p>
          <CodeWindow text={sourceText} label="FX source" />
        </>
      ) : (
        <>
          <textarea
            aria-label="FX source"
            aria-describedby={blocking ? 'blocking-paste-note' : undefined}
            spellCheck={false}
            value={text}
            placeholder="Paste FX text: a print_readable() module, a fragment from a PR, or str(graph)."
            onChange={(e) => setDraft(e.target.value)}
            onPaste={onPaste}
          />
          {blocking && (
            <p id="blocking-paste-note" className="muted source-note" data-testid="blocking-paste-note">
              {BLOCKING_PASTE_NOTE}
            </p>
          )}
        </>
      )}
    </div>
  );
}

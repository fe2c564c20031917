// Where graphs come from: a built-in sample, a file (picked or dropped), or pasted text.

import { useRef } from 'react';
import { SAMPLES, findSample } from '../samples.ts';
import { useStore } from '../store/index.ts';
import { loadFile, loadPickedFolder } from './folderLoad.ts';

const GROUPS = [...new Set(SAMPLES.map((s) => s.group))];

export function LoadPanel() {
  const source = useStore((s) => s.source);
  const loadSample = useStore((s) => s.loadSample);
  const setBottomTab = useStore((s) => s.setBottomTab);
  const setDraft = useStore((s) => s.setDraft);
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const sampleId = source && 'sample' in source ? source.sample : '';
  return (
    <div className="load-panel" role="group" aria-label="Load a graph">
      <label htmlFor="sample-select" className="sr-only">
        Sample
      </label>
      <select
        id="sample-select"
        value={sampleId}
        title={findSample(sampleId)?.label}
        onChange={(e) => e.target.value && loadSample(e.target.value)}
        aria-label="Sample"
      >
        {!sampleId && <option value="">{source ? 'Pasted or opened file' : 'Choose a sample…'}</option>}
        {GROUPS.map((g) => (
          <optgroup key={g} label={g}>
            {SAMPLES.filter((s) => s.group === g).map((s) => (
              <option key={s.id} value={s.id}>
                {s.label}
              </option>
            ))}
          </optgroup>
        ))}
      </select>
      <button type="button" onClick={() => fileInput.current?.click()}>
        Open file…
      </button>
      <input
        ref={fileInput}
        type="file"
        accept=".py,.txt,.fx,.json"
        hidden
        aria-label="Graph file"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void loadFile(f);
          e.target.value = '';
        }}
      />
      <button
        type="button"
        onClick={() => folderInput.current?.click()}
        title="A vLLM debug dump or TORCH_COMPILE_DEBUG folder: its stages in order"
      >
        Open folder…
      </button>
      <input
        ref={(el) => {
          folderInput.current = el;
          // React has no prop for directory pickers; set the attribute directly.
          el?.setAttribute('webkitdirectory', '');
        }}
        type="file"
        multiple
        hidden
        aria-label="Dump folder"
        onChange={(e) => {
          const files = e.target.files;
          if (files?.length) void loadPickedFolder(Array.from(files));
          e.target.value = '';
        }}
      />
      <button
        type="button"
        onClick={() => {
          setDraft('');
          setBottomTab('source');
          // The editor mounts with the tab: focus it once it is there.
          requestAnimationFrame(() =>
            document.querySelector<HTMLTextAreaElement>('textarea[aria-label="FX source"]')?.focus(),
          );
        }}
      >
        Paste FX…
      </button>
    </div>
  );
}

// Where graphs come from: a built-in sample, a file (picked or dropped), or pasted text.

import { SAMPLES, findSample } from '../samples.ts';
import { useStore } from '../store/index.ts';
import { loadFile, loadPickedFolder } from './folderLoad.ts';
import { FilePicker } from './FilePicker.tsx';

const GROUPS = [...new Set(SAMPLES.map((s) => s.group))];

export function LoadPanel() {
  const source = useStore((s) => s.source);
  const loadSample = useStore((s) => s.loadSample);
  const setBottomTab = useStore((s) => s.setBottomTab);
  const setDraft = useStore((s) => s.setDraft);
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
      <FilePicker
        label="Open file…"
        inputLabel="Graph file"
        accept=".py,.txt,.fx,.json"
        onFiles={([f]) => void loadFile(f)}
      />
      <FilePicker
        label="Open folder…"
        title="A vLLM debug dump or TORCH_COMPILE_DEBUG folder: its stages in order"
        inputLabel="Dump folder"
        multiple
        directory
        onFiles={(files) => void loadPickedFolder(files)}
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

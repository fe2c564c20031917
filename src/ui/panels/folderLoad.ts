// Graph files and dump folders in the app: a file picked with "Open file…", a folder with "Open
// folder…" (a directory input), or either dropped. A dropped folder is read whole and its stages listed;
// a TORCH_TRACE folder (or its log) is read as a log: its compiles listed, their graphs as stages.

import { MAX_FOLDER_FILES, type StageFile } from '../../graph/stageFolder.ts';
import { isTorchTraceLog } from '../../graph/artifacts/torchTrace.ts';
import { DEFAULT_MAX_BYTES } from '../../graph/errors.ts';
import { useStore } from '../store/index.ts';

/** A torch.profiler Chrome trace as it is usually saved (`*.json`, `*.json.gz`, `*.pt.trace.json…`), at the folder's top. */
const PROFILE_FILE = /^[^/]*(trace|profile)[^/]*\.json(\.gz)?$/i;

/** Reads a picked or dropped file and imports it; errors land in the editor like pasted text. */
export async function loadFile(file: File): Promise<void> {
  if (isTorchTraceLog(file.name)) return useStore.getState().loadTraceLog(file, file.name);
  await useStore.getState().loadBlob(file, file.name);
}

/** The files of a picked folder (`webkitRelativePath` = `folder/sub/file.py`). */
export async function loadPickedFolder(files: ArrayLike<File>): Promise<void> {
  const list = Array.from(files);
  if (list.length === 0) return;
  const top = list[0]!.webkitRelativePath.split('/')[0] || 'folder';
  await loadStageFiles(
    top,
    list.map((f) => ({ file: f, path: f.webkitRelativePath.split('/').slice(1).join('/') || f.name })),
  );
}

async function loadStageFiles(name: string, files: { file: File; path: string }[]): Promise<void> {
  const s = useStore.getState();
  // A TORCH_TRACE folder: its log (rank 0's where there are several) is read, streamed, in the worker.
  const logs = files
    .filter((f) => isTorchTraceLog(f.path))
    .sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
  if (logs.length > 0) {
    await s.loadTraceLog(logs[0]!.file, `${name}/${logs[0]!.path}`);
    // A profiler trace of the same run beside the log: its times go on the compile's kernels.
    const profile = files.find((f) => PROFILE_FILE.test(f.path));
    if (profile) await s.loadKernelFile(profile.file, `${name}/${profile.path}`);
    return;
  }
  if (files.length > MAX_FOLDER_FILES) {
    s.setNotice(`${name} holds ${files.length} files (at most ${MAX_FOLDER_FILES}): not a dump folder`, true);
    return;
  }
  // A file past the import limit is not read at all, only named.
  const big = files.filter(({ file }) => file.size > DEFAULT_MAX_BYTES);
  const stageFiles: StageFile[] = await Promise.all(
    files.filter((f) => !big.includes(f)).map(async ({ file, path }) => ({ path, text: await file.text() })),
  );
  s.loadStageFolder(
    stageFiles,
    name,
    big.map(({ path }) => ({
      path,
      reason: `larger than the ${DEFAULT_MAX_BYTES / 2 ** 20} MiB import limit`,
    })),
  );
}

/** A drop: a folder loads as stages, a file as one graph. Returns false when nothing usable was dropped. */
export async function loadDrop(dt: DataTransfer): Promise<boolean> {
  const entries = Array.from(dt.items ?? []).map((i) => i.webkitGetAsEntry?.() ?? null);
  const dir = entries.find((e): e is FileSystemDirectoryEntry => !!e && e.isDirectory);
  if (dir) {
    const files: { file: File; path: string }[] = [];
    await walkDirectory(dir, '', files);
    await loadStageFiles(dir.name, files);
    return true;
  }
  const f = dt.files[0];
  if (!f) return false;
  await loadFile(f);
  return true;
}

async function walkDirectory(
  dir: FileSystemDirectoryEntry,
  prefix: string,
  out: { file: File; path: string }[],
): Promise<void> {
  const reader = dir.createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (batch.length === 0) return;
    for (const e of batch) {
      if (out.length > MAX_FOLDER_FILES) return;
      if (e.isDirectory) await walkDirectory(e as FileSystemDirectoryEntry, `${prefix}${e.name}/`, out);
      else
        out.push({
          file: await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)),
          path: prefix + e.name,
        });
    }
  }
}

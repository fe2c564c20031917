// A button that opens the browser's file picker: the input itself is hidden, the button is what
// shows. The input is cleared after each pick, so picking the same file again reads it again.

import { useRef } from 'react';

export interface FilePickerProps {
  /** The button's text. */
  label: string;
  title?: string;
  /** The hidden input's accessible name (tests pick files through it). */
  inputLabel: string;
  accept?: string;
  multiple?: boolean;
  /** A folder picker: every file under the folder chosen. */
  directory?: boolean;
  /** The files picked (never none). */
  onFiles(files: File[]): void;
}

export function FilePicker({
  label,
  title,
  inputLabel,
  accept,
  multiple,
  directory,
  onFiles,
}: FilePickerProps) {
  const input = useRef<HTMLInputElement | null>(null);
  return (
    <>
      <button type="button" onClick={() => input.current?.click()} title={title}>
        {label}
      </button>
      <input
        ref={(el) => {
          input.current = el;
          // React has no prop for directory pickers; set the attribute directly.
          if (directory) el?.setAttribute('webkitdirectory', '');
        }}
        type="file"
        accept={accept}
        multiple={multiple}
        hidden
        aria-label={inputLabel}
        onChange={(e) => {
          const files = Array.from(e.target.files ?? []);
          e.target.value = '';
          if (files.length) onFiles(files);
        }}
      />
    </>
  );
}

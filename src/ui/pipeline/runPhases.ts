// How a run's phases read in the progress line, on the page and in the pipeline worker alike.

const PHASES: Record<string, string> = {
  plan: 'planning', compile: 'compiling kernels', upload: 'uploading inputs', run: 'running', download: 'reading back outputs',
};

/** The phase's label with its count where it has one (compiling kernels 3/12). */
export const phaseLabel = (p: { phase: string; done: number; total: number }) =>
  `${PHASES[p.phase] ?? p.phase}${p.total && p.phase !== 'plan' ? ` ${p.done}/${p.total}` : ''}`;

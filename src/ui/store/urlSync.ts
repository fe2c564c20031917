// Keeps the URL in step with the store (replaceState, debounced) and restores the store from it
// on startup, so a reload or a shared link shows the same graph, rewrite steps and selection.

import { drawnInputs } from '../graph/scene.ts';
import { DEFAULT_SAMPLE_ID } from '../samples.ts';
import {
  placeUrlState,
  readUrlState,
  withViewCentre,
  type StatePlace,
  type StateStorage,
  type UrlState,
} from '../urlState.ts';
import { useStore, type AppState } from './index.ts';

/** Local storage, where the browser allows it (a sandboxed frame or a privacy setting may not). */
function localStore(): StateStorage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

const PLACE_NOTICE: Record<StatePlace, string | null> = {
  query: null,
  fragment: null,
  storage:
    'This graph is too large to share as a link: the link restores it in this browser only (it is kept in local storage).',
  none: 'This graph is too large to keep in the link; a reload or a shared link will not restore it.',
};

export function snapshot(s: AppState): UrlState | null {
  if (!s.source) return null;
  return {
    v: 1,
    source: s.source,
    steps: s.steps.slice(0, s.cursor),
    gates: {
      worldSize: s.gates.worldSize,
      maxTokens: s.gates.maxTokens,
      gpu: s.gates.gpu,
      tokenGate: s.gates.tokenGate,
      tpGroup: s.gates.tpGroup,
    },
    ...(s.passConfig ? { passConfig: s.passConfig } : {}),
    cost: { profile: s.profileId, tokens: s.tokens, tp: s.costTp, algorithm: s.costAlgorithm },
    run: {
      backend: s.runSettings.backend,
      ranks: s.runSettings.ranks,
      preset: s.runSettings.preset,
      dtype: s.runSettings.dtype,
      allreduce: s.runSettings.allreduce,
      timedRuns: s.timedRuns,
    },
    overlay: { metric: s.overlayMetric, rank: s.overlayRank },
    selected: s.selected,
    // Where the views look goes in its own parameter (see URL_VIEW_PARAM), not in the state.
    view: { layout: s.layout, tab: s.bottomTab, theme: s.theme },
  };
}

/**
 * A state's identity for "has it changed": its JSON, a pasted text stood in for by a counter that
 * moves when the text does (stringifying megabytes on every store change would cost the page).
 */
function stateKeyer(): (snap: UrlState) => string {
  let lastText: string | null = null;
  let textId = 0;
  return (snap) => {
    if (!('text' in snap.source)) return JSON.stringify(snap);
    if (snap.source.text !== lastText) {
      lastText = snap.source.text;
      textId++;
    }
    return JSON.stringify({ ...snap, source: { name: snap.source.name, textId } });
  };
}

/** Restores the store from the URL, or loads the default sample; reports a bad link in the status bar. */
export async function restoreFromUrl(): Promise<void> {
  const s = useStore.getState();
  let state: UrlState | null = null;
  try {
    state = await readUrlState(window.location, localStore());
  } catch (e) {
    s.setNotice(`Ignored the link's state: ${(e as Error).message}`, true);
  }
  if (!state) {
    await s.loadSample(DEFAULT_SAMPLE_ID);
    return;
  }
  // Every field was checked against the schema while reading the link.
  if (state.view?.theme) s.setTheme(state.view.theme);
  if (state.view?.layout) s.setLayout(state.view.layout);
  if (state.gates) await s.setGates(state.gates, { replay: false });
  // Before the graph loads, so its pipeline is the link's; the link's gates win over the config's below.
  if (state.passConfig) await s.setPassConfig(state.passConfig);
  const restore = { steps: state.steps, selected: state.selected ?? null, view: state.view?.centre };
  if ('sample' in state.source) await s.loadSample(state.source.sample, restore);
  else await s.loadText(state.source.text, state.source.name, restore);
  // A link to a sample this build lacks: keep the message, show the default sample. (Text that no
  // longer imports stays in the editor with its error instead.)
  if ('sample' in state.source && useStore.getState().stages.length === 0)
    await useStore.getState().loadSample(DEFAULT_SAMPLE_ID);
  // Gates from the link win over the sample's own TP degree.
  if (state.gates) await useStore.getState().setGates(state.gates);
  restoreControls(state);
  if (state.view?.tab) useStore.getState().setBottomTab(state.view.tab);
  refuseUnknownCentre(state);
}

/** The cost model, Run form and overlay as the link's maker left them: the numbers they show follow. */
function restoreControls(state: UrlState): void {
  const s = useStore.getState();
  const { cost, run, overlay } = state;
  if (cost?.profile !== undefined) s.setProfile(cost.profile);
  if (cost?.tokens !== undefined) s.setTokens(cost.tokens);
  if (cost?.tp !== undefined) s.setCostTp(cost.tp);
  if (cost?.algorithm !== undefined) s.setCostAlgorithm(cost.algorithm);
  if (run) {
    const { timedRuns, ...settings } = run;
    // The schema's records leave out the fields a link lacks: the form keeps its own there.
    s.setRunSettings(settings);
    if (timedRuns !== undefined) s.setTimedRuns(timedRuns);
  }
  // The overlay is shown once a run gives it numbers (see overlayUnavailable); until then, the kind.
  if (overlay?.rank !== undefined) s.setOverlayRank(overlay.rank);
  if (overlay?.metric !== undefined) s.setOverlayMetric(overlay.metric);
}

/** A centre on a node the shown graph lacks (a hand-edited link, a pass that now names nodes otherwise): the first view instead. */
function refuseUnknownCentre(state: UrlState): void {
  const s = useStore.getState();
  const centre = state.view?.centre;
  // Not this link's graph (a missing sample fell back to the default; text that failed to import).
  if (!centre || JSON.stringify(s.source) !== JSON.stringify(state.source)) return;
  const shown = s.stages[s.scrub ?? s.stages.length - 1]?.graph;
  if (!shown || [...drawnInputs(shown), ...shown.nodes].some((n) => n.name === centre.node)) return;
  if (s.viewCentre === centre) s.setViewCentre(null);
  s.setNotice(
    `Ignored the link's view: state.view.centre.node ${JSON.stringify(centre.node.slice(0, 60))} is not a node of ${s.sourceName}`,
    true,
  );
}

/** Puts `href`, with where the views look now, in the address bar (no history entry). */
function showHref(href: string): void {
  const next = withViewCentre(href, useStore.getState().viewCentre);
  if (next !== window.location.href) window.history.replaceState(null, '', next);
}

/** Subscribes the URL to the store; returns the unsubscribe function. */
export function syncUrl(): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let scheduled = '';
  let lastPlace: StatePlace = 'query';
  const keyOf = stateKeyer();
  let centreTimer: ReturnType<typeof setTimeout> | undefined;
  let lastCentre: AppState['viewCentre'] = null;
  const write = async (snap: UrlState, key: string) => {
    try {
      const placed = await placeUrlState(window.location.href, snap, localStore());
      if (scheduled !== key) return; // a newer state is on its way
      const { place } = placed;
      showHref(placed.href);
      if (place !== lastPlace && PLACE_NOTICE[place]) useStore.getState().setNotice(PLACE_NOTICE[place]);
      lastPlace = place;
    } finally {
      // Another change may have come in while compressing; it has its own timer.
      if (scheduled === key) {
        timer = undefined;
        useStore.getState().setUrlPending(false);
      }
    }
  };
  const unsubscribe = useStore.subscribe((state) => {
    const snap = snapshot(state);
    if (!snap) return;
    const key = keyOf(snap);
    if (key === scheduled) {
      // Only the view moved: its own parameter, not the whole state again.
      if (state.viewCentre === lastCentre) return;
      lastCentre = state.viewCentre;
      clearTimeout(centreTimer);
      state.setUrlPending(true);
      centreTimer = setTimeout(() => {
        showHref(window.location.href);
        // A full write may have started meanwhile: it clears the flag itself.
        if (timer === undefined) useStore.getState().setUrlPending(false);
      }, 120);
      return;
    }
    scheduled = key;
    lastCentre = state.viewCentre;
    clearTimeout(timer);
    clearTimeout(centreTimer);
    state.setUrlPending(true);
    timer = setTimeout(() => void write(snap, key), 120);
  });
  return () => {
    clearTimeout(timer);
    clearTimeout(centreTimer);
    unsubscribe();
  };
}

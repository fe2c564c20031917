// The view's size, kept up to date by a ResizeObserver on its root: as state (what renders with
// it) and in `refs.size` (what timers and frames read without a render).

import { useLayoutEffect, useState } from 'react';
import type { ViewSize } from '../viewCentre.ts';
import type { ViewRefs } from './viewRefs.ts';

export function useElementSize(refs: Pick<ViewRefs, 'root' | 'size'>): ViewSize {
  const [size, setSize] = useState<ViewSize>({ w: 0, h: 0 });
  refs.size.current = size;
  useLayoutEffect(() => {
    const el = refs.root.current;
    if (!el) return;
    const measure = () => setSize({ w: el.clientWidth, h: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [refs]);
  return size;
}

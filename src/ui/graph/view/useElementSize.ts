// An element's size, kept up to date by a ResizeObserver: as state (what renders with it) and
// in a ref (what timers and frames read without a render).

import { useLayoutEffect, useRef, useState, type MutableRefObject, type RefObject } from 'react';
import type { ViewSize } from '../viewCentre.ts';

export function useElementSize(ref: RefObject<HTMLElement | null>): {
  size: ViewSize;
  sizeRef: MutableRefObject<ViewSize>;
} {
  const [size, setSize] = useState<ViewSize>({ w: 0, h: 0 });
  const sizeRef = useRef(size);
  sizeRef.current = size;
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setSize({ w: el.clientWidth, h: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [ref]);
  return { size, sizeRef };
}

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { useStore } from './store/index.ts';
import './theme.css';

const params = new URLSearchParams(window.location.search);
const testMode = params.get('test') === '1';
if (testMode) {
  document.body.dataset.ready = 'false';
  useStore.getState().enterTestMode();
} else if (window.matchMedia?.('(prefers-color-scheme: dark)').matches) {
  useStore.getState().setTheme('dark');
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

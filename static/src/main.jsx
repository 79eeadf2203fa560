// Entry point: the stylesheets are imported here so esbuild emits one hashed
// CSS bundle next to the JS bundle (build.mjs links both from index.html).
import 'todomvc-app-css/index.css';
import './app.css';

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

// The app shell for offline starts (src/sw.js, built to dist/sw.js), served by the
// server at /sw.js: a worker controls only the pages under its script's folder.
export const SERVICE_WORKER = '/sw.js';
if (SERVICE_WORKER && 'serviceWorker' in navigator) {
  window.addEventListener('load', () => navigator.serviceWorker.register(SERVICE_WORKER).catch(() => {}));
}

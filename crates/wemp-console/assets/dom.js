// The page's DOM and server helpers: elements, icons, the API, toasts, the clipboard.

import { t, tServer } from './i18n.js';

export const BASE = document.querySelector('meta[name="wemp-base"]').content;
export const CSRF = document.querySelector('meta[name="wemp-csrf"]').content;
export const $ = (id) => document.getElementById(id);

// Line icons (24×24, stroked), so the page needs no emoji or icon font.
const ICONS = {
  image: 'M4 5h16v14H4z M4 16l5-5 4 4 3-3 4 4 M8.5 9.5m-1.5 0a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0-3 0',
  location: 'M12 21s-6-5.5-6-11a6 6 0 0 1 12 0c0 5.5-6 11-6 11z M12 10m-2 0a2 2 0 1 0 4 0a2 2 0 1 0-4 0',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1 M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
  follow: 'M9 8m-4 0a4 4 0 1 0 8 0a4 4 0 1 0-8 0 M3 20a6 6 0 0 1 12 0 M19 8v6 M16 11h6',
  unfollow: 'M9 8m-4 0a4 4 0 1 0 8 0a4 4 0 1 0-8 0 M3 20a6 6 0 0 1 12 0 M16 11h6',
  scan: 'M4 8V4h4 M16 4h4v4 M20 16v4h-4 M8 20H4v-4 M7 12h10',
  voice: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z M5 11a7 7 0 0 0 14 0 M12 18v3',
  video: 'M3 6h12v12H3z M15 10l6-3v10l-6-3z',
  music: 'M9 18V5l12-2v13 M6 18m-3 0a3 3 0 1 0 6 0a3 3 0 1 0-6 0 M18 16m-3 0a3 3 0 1 0 6 0a3 3 0 1 0-6 0',
  keyboard: 'M3 6h18v12H3z M7 10h.01 M11 10h.01 M15 10h.01 M7 14h10',
  menu: 'M4 7h16 M4 12h16 M4 17h16',
  plus: 'M12 12m-9 0a9 9 0 1 0 18 0a9 9 0 1 0-18 0 M12 8v8 M8 12h8',
  clear: 'M4 7h16 M10 11v6 M14 11v6 M6 7l1 13h10l1-13 M9 7V4h6v3',
  close: 'M6 6l12 12 M18 6L6 18',
  warn: 'M12 3l10 18H2z M12 10v5 M12 18h.01',
};

export function icon(name) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', ICONS[name] || '');
  svg.append(path);
  return svg;
}

/** Builds an element; children are nodes or strings (always text, never HTML). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Calls the console's API: `opts.json` is sent as JSON, `opts.body` as it is (with
 * `opts.headers`). Throws an Error in the page's language when the server refuses.
 */
export async function api(path, opts = {}) {
  const init = { credentials: 'same-origin', ...opts, headers: { ...(opts.headers || {}) } };
  if (init.method && init.method !== 'GET') init.headers['X-Wemp-Csrf'] = CSRF;
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${BASE}/api/${path}`, init);
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) { location.reload(); }
  if (!res.ok) {
    if (body && body.error) {
      const e = new Error(tServer(`api.${body.code}`, body.params || {}, body.error));
      e.body = body; // the refusal's details (a refused reload's `problems`)
      throw e;
    }
    throw new Error(res.status === 413 ? t('api.too-large') : `HTTP ${res.status}`);
  }
  return body;
}

export function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 2500);
}

export async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const ta = h('textarea', { class: 'offscreen', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  toast(t('copied', { what }));
}

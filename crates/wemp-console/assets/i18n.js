// The page's languages: English and Simplified Chinese. The browser's language chooses
// (navigator.languages), the switch in the header overrides it (kept in localStorage).
// Every string the page shows has one key in strings.js; `t(key, params)` fills `{name}` params.
import { STRINGS } from './strings.js';

/** The languages the page speaks: code, the name it shows in the switch. */
export const LANGS = [['en', 'English'], ['zh-CN', '简体中文']];
const STORE = 'wemp-console-lang';

/** The language chosen by the switch, else the browser's first zh or en language, else English. */
function pick() {
  let stored = null;
  try { stored = localStorage.getItem(STORE); } catch (_) { /* storage refused */ }
  if (stored && STRINGS[stored]) return stored;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const low = String(l).toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
  }
  return 'en';
}

/** The page's language. */
export const lang = pick();

/** Switches the language (remembered in this browser) and reloads the page in it. */
export function setLang(code) {
  try { localStorage.setItem(STORE, code); } catch (_) { /* storage refused: this page only */ }
  location.reload();
}

/** `s` with its `{name}` params filled; an unknown name stays as it is. */
function fill(s, params) {
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** The string `key` in the page's language (English when it lacks one), `{name}` filled from params. */
export function t(key, params = {}) {
  const s = STRINGS[lang][key] ?? STRINGS.en[key];
  if (s === undefined) {
    console.warn(`wemp console: no string ${key}`);
    return key;
  }
  return fill(s, params);
}

/**
 * A sentence the server composed, by its `code`: the page's language's `server.{code}`
 * (filled from params) where it has one, else the server's own text, `fallback`. The server's
 * English is its one home: the tables hold only translations of it (`server.*` keys exist in
 * other languages, never in `en`).
 */
export function tServer(code, params, fallback) {
  const s = code && STRINGS[lang][`server.${code}`];
  if (s === undefined || s === null || s === '') return fallback;
  return fill(s, params);
}

/** Whether the page has a string `key` (for codes from the server that may be new). */
export function has(key) {
  return key in STRINGS.en;
}

/** Like `t`, but `{name}` params may be nodes: returns the pieces to append (text and nodes). */
export function tNodes(key, params = {}) {
  const s = t(key, Object.fromEntries(Object.entries(params).filter(([, v]) => !(v instanceof Node))));
  return s.split(/(\{\w+\})/).filter((p) => p !== '').map((p) => {
    const m = p.match(/^\{(\w+)\}$/);
    return m && params[m[1]] instanceof Node ? params[m[1]] : p;
  });
}

/**
 * Translates the static page: `data-i18n="key"` sets an element's text, keeping the child
 * elements named by `data-part="name"` in place of `{name}`; `data-i18n-attr="attr:key …"`
 * sets attributes (aria-label, title, placeholder); `data-i18n-server="code"` translates the
 * server's text by its code (see `tServer`).
 */
export function translatePage(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n-server]')) {
    el.textContent = tServer(el.dataset.i18nServer, {}, el.textContent);
  }
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const parts = {};
    for (const p of el.querySelectorAll(':scope > [data-part]')) parts[p.dataset.part] = p;
    el.replaceChildren(...tNodes(el.dataset.i18n, parts));
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(/\s+/).filter(Boolean)) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr, t(key));
    }
  }
}

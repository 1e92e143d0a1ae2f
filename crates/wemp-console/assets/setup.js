// ---------------------------------------------------------------- setup
import { $, api, copy, h } from './dom.js';
import { accountLabel, multiAccount, state } from './state.js';

const MODE_LABEL = { plain: '明文模式 (plain)', compatible: '兼容模式 (compatible)', safe: '安全模式 (safe)' };

function pasteRow(label, value, opts = {}) {
  const dd = h('dd', {}, h('code', { class: 'value', id: opts.id }, value || '—'));
  if (opts.reveal) dd.append(h('button', { type: 'button', id: 'reveal-key', onclick: opts.reveal }, 'Reveal'));
  if (value) {
    dd.append(h('button', { type: 'button', 'aria-label': `Copy ${label}`, class: 'copy',
      onclick: async () => copy(opts.copyValue ? await opts.copyValue() : value, label) }, 'Copy'));
  }
  return [h('dt', {}, label), dd];
}

let setupLoaded = null; // the account whose setup is shown
export async function loadSetup(force) {
  if (!state.config || (setupLoaded === state.account && !force)) return;
  const account = state.account;
  const first = setupLoaded === null;
  setupLoaded = account;
  const q = `account=${encodeURIComponent(account)}`;
  if (multiAccount()) $('paste-h').textContent = `Paste into the WeChat console: ${accountLabel(account)}`;
  try {
    const s = await api(`setup?${q}`);
    if (account !== state.account) return;
    let revealed = null;
    const getKey = async () => {
      if (!revealed) revealed = (await api(`setup/reveal?${q}`, { method: 'POST' })).aes_key;
      return revealed;
    };
    const rows = [
      ...pasteRow('URL (服务器地址)', s.url),
      ...pasteRow('Token (令牌)', s.token),
      ...pasteRow('EncodingAESKey (消息加解密密钥)', s.aes_key_masked, {
        id: 'aes-key',
        copyValue: getKey,
        reveal: s.aes_key_masked ? async (e) => {
          const key = await getKey();
          $('aes-key').textContent = key;
          e.target.remove();
        } : null,
      }),
      ...pasteRow('Mode (消息加解密方式)', MODE_LABEL[s.mode] || s.mode),
    ];
    if (!s.aes_key_masked) rows.push(h('dt', {}, ''), h('dd', { class: 'hint' }, 'No EncodingAESKey configured: only plain mode works. Generate one in the WeChat console and add it to the config for compatible or safe mode.'));
    $('paste').replaceChildren(...rows);
  } catch (e) {
    $('paste').replaceChildren(h('p', { class: 'error-line' }, e.message));
  }
  if (!first) return; // the doctor and the rules are the server's, not the account's
  loadDoctor();
  loadRules();
}

export async function loadDoctor() {
  const list = $('checks');
  list.replaceChildren(h('li', { class: 'hint' }, 'Running checks…'));
  try {
    const res = await api('doctor', { method: 'POST' });
    if (!res.checks.length) { list.replaceChildren(h('li', { class: 'hint' }, 'No checks available on this server.')); return; }
    list.replaceChildren(...res.checks.map((c) => h('li', { class: `check ${c.status}` },
      h('span', { class: `badge ${c.status}` }, c.status), h('div', {}, h('strong', {}, c.name), h('div', { class: 'detail-text' }, c.detail)))));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'error-line' }, e.message));
  }
}

function renderRules(rules) {
  $('rules-rows').replaceChildren(...rules.map((r, i) => h('tr', {}, h('td', { class: 'num' }, String(i + 1)),
    h('td', {}, r.name ? h('div', { class: 'rule-name' }, r.name) : null, h('code', {}, r.when)), h('td', {}, r.reply))));
  if (!rules.length) $('rules-rows').append(h('tr', {}, h('td', { colspan: '3', class: 'hint' }, 'No rules reported by this server.')));
}

async function loadRules() {
  try { renderRules((await api('rules')).rules); } catch (e) { $('reload-status').textContent = e.message; }
}

export async function reloadRules() {
  const status = $('reload-status');
  status.textContent = 'Reloading…';
  status.className = 'status-line';
  try {
    const res = await api('rules/reload', { method: 'POST' });
    status.textContent = `Reloaded: ${res.report}`;
    status.classList.add('ok');
    renderRules(res.rules);
  } catch (e) {
    status.textContent = `Not reloaded, the previous rules stay in effect: ${e.message}`;
    status.classList.add('bad');
  }
}

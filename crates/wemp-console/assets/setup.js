// ---------------------------------------------------------------- setup
import { $, api, copy, h } from './dom.js';
import { accountLabel, accountOf, multiAccount, state } from './state.js';
import { has, lang, t, tServer } from './i18n.js';

function pasteRow(label, value, opts = {}) {
  const dd = h('dd', {}, h('code', { class: 'value', id: opts.id }, value || '—'));
  if (opts.reveal) dd.append(h('button', { type: 'button', id: 'reveal-key', onclick: opts.reveal }, t('setup.reveal')));
  if (value) {
    dd.append(h('button', { type: 'button', 'aria-label': t('setup.copy.label', { label }), class: 'copy',
      onclick: async () => copy(opts.copyValue ? await opts.copyValue() : value, label) }, t('setup.copy')));
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
  // Where to paste depends on the kind: the WeChat Developer Platform, WeCom's admin console
  // or the Mini Program's.
  const a = accountOf(account) || {};
  const kind = a.kind || 'official_account';
  // A third-party platform's authorizer: its messages come through the platform, sealed
  // with the platform's Token and key; nothing is pasted for the account itself.
  const authorizer = !!a.component;
  // A WeCom account with no AgentID is a service provider's suite (第三方应用): its callbacks
  // are sealed for its SuiteID (the account's corpid) and carry none.
  const where = kind === 'wecom' && !a.agentid ? 'wecom.suite' : kind;
  if (multiAccount()) {
    const heading = authorizer ? 'setup.paste.authorizer'
      : kind === 'official_account' ? 'setup.paste.account' : `setup.paste.${where}`;
    $('paste-h').textContent = t(heading, { account: accountLabel(account) });
  }
  $('setup-where').textContent = authorizer ? t('setup.where.authorizer', { component: a.component })
    : kind === 'official_account' ? t('setup.where')
      : t(`setup.where.${where}`, { agentid: a.agentid, suiteid: a.appid });
  try {
    const s = await api(`setup?${q}`);
    if (account !== state.account) return;
    let revealed = null;
    const getKey = async () => {
      if (!revealed) revealed = (await api(`setup/reveal?${q}`, { method: 'POST' })).aes_key;
      return revealed;
    };
    if (authorizer) {
      $('paste').replaceChildren(...pasteRow(t('setup.url'), s.url),
        ...pasteRow(t('setup.mode'), has(`setup.mode.${s.mode}`) ? t(`setup.mode.${s.mode}`) : s.mode));
      return finishSetup(first);
    }
    const rows = [
      ...pasteRow(t('setup.url'), s.url),
      ...pasteRow(t('setup.token'), s.token),
      ...pasteRow(t('setup.aes-key'), s.aes_key_masked, {
        id: 'aes-key',
        copyValue: getKey,
        reveal: s.aes_key_masked ? async (e) => {
          const key = await getKey();
          $('aes-key').textContent = key;
          e.target.remove();
        } : null,
      }),
      // WeCom always encrypts: its console has no mode to choose.
      ...(kind === 'wecom' ? [] : pasteRow(t('setup.mode'), has(`setup.mode.${s.mode}`) ? t(`setup.mode.${s.mode}`) : s.mode)),
    ];
    if (!s.aes_key_masked) rows.push(h('dt', {}, ''), h('dd', { class: 'hint' }, t('setup.no-key')));
    $('paste').replaceChildren(...rows);
  } catch (e) {
    $('paste').replaceChildren(h('p', { class: 'error-line' }, e.message));
  }
  return finishSetup(first);
}

/** The doctor, the rules and the authorizers: the server's, not the account's, so loaded once. */
function finishSetup(first) {
  if (!first) return;
  loadDoctor();
  loadRules();
  loadAuthorizers();
}

/** The third-party platform's authorizers (read-only); the panel stays hidden without one. */
async function loadAuthorizers() {
  const rows = $('authorizers-rows');
  try {
    const res = await api('authorizers');
    $('authorizers-panel').hidden = !res.component;
    rows.replaceChildren(...res.authorizers.map((a) => h('tr', {}, h('td', {}, h('code', {}, a.appid)),
      h('td', {}, [a.nick_name, a.user_name].filter(Boolean).join(' · ') || '—'),
      h('td', {}, new Date(a.authorized_at_ms).toLocaleString(lang)))));
    if (!res.authorizers.length) rows.append(h('tr', {}, h('td', { colspan: '3', class: 'hint' }, t('authorizers.none'))));
  } catch (e) {
    $('authorizers-panel').hidden = false;
    rows.replaceChildren(h('tr', {}, h('td', { colspan: '3', class: 'error-line' }, e.message)));
  }
}

export async function loadDoctor() {
  const list = $('checks');
  list.replaceChildren(h('li', { class: 'hint' }, t('doctor.running')));
  try {
    // The server words its findings in the page's language.
    const res = await api(`doctor?lang=${encodeURIComponent(lang)}`, { method: 'POST' });
    if (!res.checks.length) { list.replaceChildren(h('li', { class: 'hint' }, t('doctor.none'))); return; }
    list.replaceChildren(...res.checks.map((c) => h('li', { class: `check ${c.status}` },
      h('span', { class: `badge ${c.status}` }, has(`check.${c.status}`) ? t(`check.${c.status}`) : c.status), h('div', {}, h('strong', {}, c.name), h('div', { class: 'detail-text' }, c.detail)))));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'error-line' }, e.message));
  }
}

function renderRules(rules) {
  $('rules-rows').replaceChildren(...rules.map((r, i) => h('tr', {}, h('td', { class: 'num' }, String(i + 1)),
    h('td', {}, r.name ? h('div', { class: 'rule-name' }, r.name) : null, h('code', {}, r.when)), h('td', {}, r.reply))));
  if (!rules.length) $('rules-rows').append(h('tr', {}, h('td', { colspan: '3', class: 'hint' }, t('rules.none'))));
}

async function loadRules() {
  try { renderRules((await api('rules')).rules); } catch (e) { $('reload-status').textContent = e.message; }
}

export async function reloadRules() {
  const status = $('reload-status');
  status.textContent = t('rules.reloading');
  status.className = 'status-line';
  try {
    const res = await api('rules/reload', { method: 'POST' });
    status.textContent = t('rules.reloaded', { report: tServer(`rules.${res.code}`, res.params || {}, res.report) });
    status.classList.add('ok');
    renderRules(res.rules);
  } catch (e) {
    const problems = (e.body && e.body.problems) || [];
    status.classList.add('bad');
    if (problems.length) {
      status.replaceChildren(t('rules.not-reloaded.problems', { count: problems.length }),
        h('ul', { class: 'problems' }, problems.map((p) => h('li', {}, configProblem(p)))));
    } else {
      status.textContent = t('rules.not-reloaded', { error: e.message });
    }
  }
}

/**
 * One problem of a refused reload in the page's words: its place (file and line, the field)
 * framed in the page's language, the message in the page's language as the server words it
 * (`messages`, else its English; the English line when the page cannot frame it).
 */
function configProblem(p) {
  const where = p.line != null ? tServer('config.at-line', p, null) : p.source;
  if (where === null) return p.text;
  const message = (p.messages && p.messages[lang]) || p.message;
  return p.field != null
    ? tServer('config.problem-field', { where, field: p.field, message }, p.text)
    : tServer('config.problem', { where, message }, p.text);
}

// ---------------------------------------------------------------- live log
import { $, BASE, api, h, icon, toast } from './dom.js';
import { accountLabel, multiAccount, state } from './state.js';
import { lateWatch, showLate } from './chat.js';
import { has, lang, t } from './i18n.js';

/** An outcome code (`reply`, `no_reply`, …) in the page's words; an unknown code as it is. */
export function outcomeLabel(code) {
  return code && has(`outcome.${code}`) ? t(`outcome.${code}`) : code;
}

/** A mode code (`plain`, `compatible`, `safe`) in the page's words, short. */
export function modeLabel(code) {
  return code && has(`mode.${code}`) ? t(`mode.${code}`) : code;
}

function typeOf(x) {
  if (x.method === 'GET') return 'verify';
  if (x.msg_type === 'event' && x.event) return `event:${x.event}`;
  return x.msg_type || '?';
}

export function nameOf(openid) {
  if (!openid) return '—';
  return state.names.get(openid) || `${openid.slice(0, 6)}…${openid.slice(-4)}`;
}

function matches(x) {
  const f = new FormData($('filters'));
  const account = f.get('account');
  const user = f.get('user');
  const type = f.get('type');
  const outcome = f.get('outcome');
  return (!account || x.account === account) && (!user || x.openid === user) && (!type || typeOf(x) === type)
    && (!outcome || x.outcome === outcome);
}

function fmtTime(ms) {
  const d = new Date(ms);
  return [d.toLocaleTimeString(lang, { hour12: false }), h('span', { class: 'ms' }, '.' + String(d.getMilliseconds()).padStart(3, '0'))];
}

function row(x) {
  const tr = h('tr', { tabindex: '0', 'data-id': x.id, 'data-outcome': x.outcome || '', 'aria-label': t('log.row', { id: x.id, type: typeOf(x), outcome: outcomeLabel(x.outcome) || '' }),
    onclick: () => select(x.id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(x.id); } } },
  h('td', { class: 'mono' }, fmtTime(x.received_at_ms)),
  h('td', { title: x.openid || '' }, nameOf(x.openid)),
  h('td', {}, h('span', { class: 'type' }, typeOf(x).startsWith('event:') ? [h('span', { class: 'type-prefix' }, 'event:'), typeOf(x).slice(6)] : typeOf(x))),
  h('td', { class: 'col-summary' }, x.summary || '', x.attempt > 1 ? h('span', { class: 'retry' }, ` ${t('log.retry', { n: x.attempt })}`) : null,
    x.diagnostics && x.diagnostics.length ? h('span', { class: 'diag-flag', title: x.diagnostics.join('\n') }, icon('warn')) : null),
  h('td', {}, modeLabel(x.mode) || '—'),
  h('td', {}, h('span', { class: `badge ${x.outcome || ''}` }, outcomeLabel(x.outcome) || '…')),
  h('td', { class: 'num mono' }, String(x.latency_ms)),
  multiAccount() ? h('td', { class: 'col-account' }, h('span', { class: 'badge account', title: x.account || '' }, accountLabel(x.account))) : null);
  if (state.selected === x.id) tr.classList.add('selected');
  return tr;
}

export function addOption(select, value, label) {
  if ([...select.options].some((o) => o.value === value)) return;
  select.append(h('option', { value }, label));
}

const sameDelivery = (a, b) => a.received_at_ms === b.received_at_ms && a.openid === b.openid && a.summary === b.summary;

function ingest(x) {
  if (state.exchanges.some((e) => (e.id === x.id && e.source === x.source) || (x.source === 'log' && sameDelivery(e, x)))) return;
  state.exchanges.push(x);
  if (x.outcome === 'follow_up' && lateWatch.has(x.delivery)) {
    const key = lateWatch.get(x.delivery);
    lateWatch.delete(x.delivery);
    showLate(key, x);
  }
  if (state.exchanges.length > 2000) state.exchanges.shift();
  $('log-count').textContent = String(state.exchanges.length);
  if (x.openid) addOption($('f-user'), x.openid, nameOf(x.openid));
  if (x.account && multiAccount()) addOption($('f-account'), x.account, accountLabel(x.account));
  addOption($('f-type'), typeOf(x), typeOf(x));
  if (matches(x)) {
    $('log-rows').prepend(row(x));
    $('log-empty').hidden = true;
  }
}

export function redrawLog() {
  const rows = state.exchanges.filter(matches).reverse().map(row);
  $('log-rows').replaceChildren(...rows);
  $('log-empty').hidden = rows.length > 0;
}

/** Indents XML one element per line; a leaf stays on one line with its text or CDATA. */
export function prettyXml(xml) {
  if (!xml || !xml.trim().startsWith('<')) return xml || '';
  const toks = (xml.match(/<!\[CDATA\[[\s\S]*?\]\]>|<[^>]+>|[^<]+/g) || []).filter((t) => t.startsWith('<') || t.trim());
  const out = [];
  let depth = 0;
  const pad = () => '  '.repeat(Math.max(depth, 0));
  for (let i = 0; i < toks.length; i += 1) {
    const t = toks[i];
    const isOpen = /^<[^!?/]/.test(t) && !/\/>$/.test(t);
    const isClose = (x) => x !== undefined && x.startsWith('</');
    const isContent = (x) => x !== undefined && (!x.startsWith('<') || x.startsWith('<![CDATA['));
    if (isClose(t)) { depth -= 1; out.push(pad() + t); continue; }
    if (isOpen && isContent(toks[i + 1]) && isClose(toks[i + 2])) { out.push(pad() + t + toks[i + 1] + toks[i + 2]); i += 2; continue; }
    if (isOpen && isClose(toks[i + 1])) { out.push(pad() + t + toks[i + 1]); i += 1; continue; }
    out.push(pad() + t.trim());
    if (isOpen) depth += 1;
  }
  return out.join('\n');
}

function select(id) {
  state.selected = id;
  const x = state.exchanges.find((e) => e.id === id);
  if (!x) return;
  for (const tr of $('log-rows').children) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  const kv = [
    ...(multiAccount() ? [[t('log.account'), x.account ? `${accountLabel(x.account)} (${x.account})` : t('detail.no-account')]] : []),
    [t('detail.received'), new Date(x.received_at_ms).toLocaleString(lang)],
    [t('log.user'), x.openid || '—'],
    [t('log.type'), typeOf(x)],
    ['MsgId', x.msg_id || '—'],
    [t('log.mode'), modeLabel(x.mode) || '—'],
    [t('log.outcome'), outcomeLabel(x.outcome) || '—'],
    [t('detail.status'), x.status == null ? '—' : String(x.status)],
    [t('detail.dedup'), (x.dedup && (has(`dedup.${x.dedup}`) ? t(`dedup.${x.dedup}`) : x.dedup))
      || (x.attempt > 1 ? t('detail.retry-unreported', { n: x.attempt }) : t('detail.unreported'))],
    [t('detail.handler'), x.handler || t('detail.unreported')],
    [t('detail.latency'), t('ms', { ms: x.latency_ms })],
    [t('detail.source'), has(`source.${x.source}`) ? t(`source.${x.source}`) : x.source],
  ];
  $('detail-kv').replaceChildren(...kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const diag = [];
  if (x.error) diag.push(h('p', { class: 'error-line' }, x.error));
  if (x.diagnostics && x.diagnostics.length) {
    diag.push(h('h3', {}, t('detail.verification')), h('ul', { class: 'diagnostics' }, x.diagnostics.map((d) => h('li', {}, d))));
  }
  if (x.checks && x.checks.length) {
    // What the server's admission checked, in order (wemp_proto::admission::Check).
    diag.push(h('h3', {}, t('detail.checks')), h('ul', { class: 'diagnostics' },
      x.checks.map((c) => h('li', { class: c.passed ? 'check ok' : 'check fail' }, `${c.passed ? '✓' : '✗'} ${c.kind}: ${c.note}`))));
  }
  $('detail-diag').replaceChildren(...diag);
  $('detail-raw').textContent = prettyXml(x.raw_xml) || '—';
  $('detail-reply').textContent = prettyXml(x.reply_xml) || '—';
  $('detail').hidden = false;
  document.body.classList.add('detail-open');
  $('detail').focus({ preventScroll: true });
}

export function closeDetail() {
  $('detail').hidden = true;
  document.body.classList.remove('detail-open');
  const tr = $('log-rows').querySelector('tr.selected');
  state.selected = null;
  if (tr) { tr.classList.remove('selected'); tr.focus(); }
}

export function connectFeed() {
  const es = new EventSource(`${BASE}/api/events`);
  es.addEventListener('open', () => { $('live').textContent = t('live.on'); $('live').className = 'live on'; });
  es.addEventListener('error', () => { $('live').textContent = t('live.reconnecting'); $('live').className = 'live off'; });
  es.addEventListener('exchange', (e) => ingest(JSON.parse(e.data)));
}

export async function loadHistory() {
  try {
    const f = new FormData($('filters'));
    const q = new URLSearchParams();
    if (f.get('account')) q.set('account', f.get('account'));
    if (f.get('user')) q.set('user', f.get('user'));
    const type = f.get('type');
    if (type && !type.startsWith('event:') && type !== 'verify') q.set('type', type);
    const res = await api(`history?${q}`);
    for (const x of res.items) ingest(x);
    redrawLog();
    toast(t('log.loaded', { n: res.items.length }));
  } catch (e) {
    toast(t('log.load-failed', { error: e.message }));
  }
}

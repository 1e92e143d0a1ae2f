// ---------------------------------------------------------------- live log
import { $, BASE, api, h, icon, toast } from './dom.js';
import { accountLabel, kindOf, multiAccount, state } from './state.js';
import { lateWatch, showLate } from './chat.js';
import { has, lang, t, tServer } from './i18n.js';

/** An outcome code (`reply`, `no_reply`, …) in the page's words; an unknown code as it is. */
export function outcomeLabel(code) {
  return code && has(`outcome.${code}`) ? t(`outcome.${code}`) : code;
}

/** A mode code (`plain`, `compatible`, `safe`) in the page's words, short. */
export function modeLabel(code) {
  return code && has(`mode.${code}`) ? t(`mode.${code}`) : code;
}

// An entry wraps the server's record of one delivery (`x.record`, as `wemp log --json`
// prints it); the page words what the record says.

/** WeChat gives up on a try after this many milliseconds. */
const WECHAT_TIMEOUT_MS = 5000;

/** The latency of an entry in whole milliseconds. */
export const latencyMs = (x) => Math.round((x.record.latency_us || 0) / 1000);

/**
 * How an entry ended, as the page names it (`outcome.<code>` in strings.js), read from the
 * record's typed outcome: an answer is a reply or none, or too slow past WeChat's 5 s; a
 * caller that hung up before the answer is abandoned; the tap's entries are a service that
 * panicked.
 */
export function outcomeOf(x) {
  const r = x.record;
  if (x.tap === 'panicked' || x.source === 'hub') return 'error';
  const kind = r.outcome && r.outcome.kind;
  switch (kind) {
    case 'answered':
      if (latencyMs(x) > WECHAT_TIMEOUT_MS) return 'too_slow';
      return x.reply && x.reply.type !== 'none' ? 'reply' : 'no_reply';
    case 'late': return 'follow_up';
    case 'hung_up': return 'abandoned';
    case 'verified': return 'verify';
    default: return kind || null;
  }
}

/** What the late-reply sink did, for a follow-up: `delivered`, …, or `none` without a reply. */
export function lateSink(x) {
  const o = x.record.outcome;
  return o && o.kind === 'late' ? (o.sink ? o.sink.result : 'none') : null;
}

/**
 * An entry's outcome in the page's words. A Mini Program's push is answered `success` by
 * design and its reply is a customer-service message: the badge says so rather than
 * "deadline" and "late reply" (the outcome code, and so the filter, stays the same).
 */
function outcomeWords(x, outcome) {
  if (kindOf(x.account) === 'miniprogram') {
    if (outcome === 'deadline') return t('outcome.mini.success');
    if (outcome === 'follow_up' && lateSink(x) === 'delivered') return t('outcome.mini.cs');
  }
  return outcomeLabel(outcome);
}

function typeOf(x) {
  const r = x.record;
  if (r.outcome && r.outcome.kind === 'verified') return 'verify';
  if (r.msg_type === 'event' && r.event) return `event:${r.event}`;
  return r.msg_type || '?';
}

/** Whether the server found something wrong with the request: a refusal or a failed check. */
const flagged = (r) => !!(r.rejection || (r.checks || []).some((c) => !c.passed));

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
  return (!account || x.account === account) && (!user || x.record.openid === user) && (!type || typeOf(x) === type)
    && (!outcome || outcomeOf(x) === outcome);
}

function fmtTime(ms) {
  const d = new Date(ms);
  return [d.toLocaleTimeString(lang, { hour12: false }), h('span', { class: 'ms' }, '.' + String(d.getMilliseconds()).padStart(3, '0'))];
}

function row(x) {
  const r = x.record;
  const outcome = outcomeOf(x);
  const tr = h('tr', { tabindex: '0', 'data-id': x.id, 'data-outcome': outcome || '', 'aria-label': t('log.row', { id: x.id, type: typeOf(x), outcome: outcomeLabel(outcome) || '' }),
    onclick: () => select(x.id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(x.id); } } },
  h('td', { class: 'mono' }, fmtTime(r.received_at_ms)),
  h('td', { title: r.openid || '' }, nameOf(r.openid)),
  h('td', {}, h('span', { class: 'type' }, typeOf(x).startsWith('event:') ? [h('span', { class: 'type-prefix' }, 'event:'), typeOf(x).slice(6)] : typeOf(x))),
  h('td', { class: 'col-summary' }, r.summary || '', r.attempts > 1 ? h('span', { class: 'retry' }, ` ${t('log.retry', { n: r.attempts })}`) : null,
    r.forward ? h('span', { class: 'forward-flag', title: t('detail.forward') }, ' ⇄') : null,
    flagged(r) ? h('span', { class: 'diag-flag', title: t('detail.checks') }, icon('warn')) : null),
  h('td', {}, modeLabel(r.mode) || '—'),
  h('td', {}, h('span', { class: `badge ${outcome || ''}` }, outcomeWords(x, outcome) || '…')),
  h('td', { class: 'num mono' }, String(latencyMs(x))),
  multiAccount() ? h('td', { class: 'col-account' }, h('span', { class: 'badge account', title: x.account || '' }, accountLabel(x.account))) : null);
  if (state.selected === x.id) tr.classList.add('selected');
  return tr;
}

export function addOption(select, value, label) {
  if ([...select.options].some((o) => o.value === value)) return;
  select.append(h('option', { value }, label));
}

const sameDelivery = (a, b) => a.record.received_at_ms === b.record.received_at_ms
  && a.record.openid === b.record.openid && a.record.summary === b.record.summary;

function ingest(x) {
  if (state.exchanges.some((e) => (e.id === x.id && e.source === x.source) || (x.source === 'log' && sameDelivery(e, x)))) return;
  state.exchanges.push(x);
  // The server numbers its records; a follow-up repeats its delivery's number.
  if (x.source === 'observer' && lateSink(x) && lateWatch.has(x.record.id)) {
    const key = lateWatch.get(x.record.id);
    lateWatch.delete(x.record.id);
    showLate(key, x);
  }
  if (state.exchanges.length > 2000) state.exchanges.shift();
  $('log-count').textContent = String(state.exchanges.length);
  if (x.record.openid) addOption($('f-user'), x.record.openid, nameOf(x.record.openid));
  if (x.account && multiAccount()) addOption($('f-account'), x.account, accountLabel(x.account));
  // On a third-party platform, a delivery for an account the page does not know (one that
  // authorized while the page is open, or the authorization itself): the accounts are read again.
  const unknown = (id) => id && !state.config.accounts.some((a) => a.id === id);
  if (x.source === 'observer' && state.config && state.config.component
    && (unknown(x.account) || unknown(x.record.appid))) {
    document.dispatchEvent(new CustomEvent('wemp:unknown-account'));
  }
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

/** A table of names and values (query parameters, headers). */
function pairs(obj, label) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return [];
  // What arrived, as it arrived: data, not words to translate.
  return [h('h3', {}, label), h('dl', { class: 'kv pairs', translate: 'no' }, keys.flatMap((k) => [h('dt', { class: 'mono' }, k), h('dd', { class: 'mono' }, obj[k])]))];
}

/** JSON text indented, or as it is when it is not JSON (or was cut). */
function prettyJson(text) {
  if (text == null) return '';
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

/** One admission check, in the page's words: the kind, and the server's note. */
function checkItem(c, r) {
  const kind = has(`check.kind.${c.kind}`) ? t(`check.kind.${c.kind}`) : c.kind;
  // A failed check is the refusal: worded by its reason; a passed one by its kind.
  const note = c.passed ? tServer(`admission.${c.kind}`, {}, c.note)
    : (r.rejection ? tServer(`reject.${r.rejection.reason}`, r.rejection, c.note) : c.note);
  return h('li', { class: c.passed ? 'check ok' : 'check fail', title: c.note }, t('detail.check', { mark: c.passed ? '✓' : '✗', kind, note }));
}

/** Why the call to the gateway app `f` failed, in the page's words (its English `error` else). */
function forwardWhy(f) {
  if (!f.error) return null;
  const target = f.target.kind === 'url' ? f.target.url : t('forward.relay');
  return tServer(`forward.${f.result}`, { target, status: f.status }, f.error);
}

/**
 * An entry's error in the page's words: a failed call to the gateway app by its result, a
 * handler's failure by its kind (the handler's own words inside); `null` without one.
 */
export function errorWords(x) {
  const r = x.record;
  if (!r.error) return null;
  if (r.forward && r.forward.error) return forwardWhy(r.forward);
  const f = x.failure;
  return f ? tServer(`handler.${f.code}`, f, r.error) : r.error;
}

/** The call to the gateway app: where, how it ended, the JSON sent and the app's answer. */
function forwardNodes(f) {
  const result = has(`forward.result.${f.result}`) ? t(`forward.result.${f.result}`) : f.result;
  const target = f.target.kind === 'url' ? f.target.url : t('forward.relay');
  const cut = (text, bytes) => (text != null && bytes > new TextEncoder().encode(text).length ? t('detail.forward.truncated', { n: bytes }) : null);
  return [
    h('h3', {}, t('detail.forward')),
    h('dl', { class: 'kv forward' },
      h('dt', {}, t('detail.forward.target')), h('dd', { class: 'mono' }, target),
      h('dt', {}, t('detail.forward.result')), h('dd', {}, result),
      h('dt', {}, t('detail.forward.status')), h('dd', {}, f.status == null ? t('detail.forward.none') : String(f.status)),
      h('dt', {}, t('detail.forward.latency')), h('dd', {}, t('ms', { ms: Math.round(f.latency_us / 1000) }))),
    f.error ? h('p', { class: 'error-line' }, forwardWhy(f)) : null,
    h('h4', {}, t('detail.forward.sent'), cut(f.sent, f.sent_bytes) ? ` (${cut(f.sent, f.sent_bytes)})` : ''),
    h('pre', { class: 'json', id: 'detail-forward-sent' }, prettyJson(f.sent)),
    h('h4', {}, t('detail.forward.answer'), cut(f.answer, f.answer_bytes) ? ` (${cut(f.answer, f.answer_bytes)})` : ''),
    h('pre', { class: 'json', id: 'detail-forward-answer' }, f.answer == null ? t('detail.forward.none') : prettyJson(f.answer)),
  ];
}

/** What the page says about how an entry ended, beyond its outcome. */
function remark(x) {
  const r = x.record;
  const ms = latencyMs(x);
  const mini = kindOf(x.account) === 'miniprogram';
  switch (outcomeOf(x)) {
    case 'abandoned': return t('detail.hung-up', { ms });
    case 'too_slow': return t('detail.too-slow', { ms });
    case 'deadline': return t(mini ? 'detail.mini.success' : 'detail.deadline', { ms });
    default: break;
  }
  if (x.tap === 'panicked') return t('detail.panicked');
  const sink = lateSink(x);
  if (mini && sink === 'delivered') return t('detail.mini.delivered');
  if (sink) return t(`detail.late.${sink}`, { why: r.outcome.sink && r.outcome.sink.message ? r.outcome.sink.message : sink });
  return null;
}

function select(id) {
  state.selected = id;
  const x = state.exchanges.find((e) => e.id === id);
  if (!x) return;
  const r = x.record;
  for (const tr of $('log-rows').children) tr.classList.toggle('selected', Number(tr.dataset.id) === id);
  const outcome = outcomeOf(x);
  const kv = [
    ...(multiAccount() ? [[t('log.account'), x.account ? `${accountLabel(x.account)} (${x.account})` : t('detail.no-account')]] : []),
    [t('detail.received'), new Date(r.received_at_ms).toLocaleString(lang)],
    [t('log.user'), r.openid || '—'],
    [t('log.type'), typeOf(x)],
    ['MsgId', r.msg_id || '—'],
    [t('log.mode'), modeLabel(r.mode) || '—'],
    [t('log.outcome'), outcomeWords(x, outcome) || '—'],
    [t('detail.status'), r.status ? String(r.status) : '—'],
    [t('detail.dedup'), (r.dedup && (has(`dedup.${r.dedup}`) ? t(`dedup.${r.dedup}`) : r.dedup)) || t('detail.unreported')],
    [t('detail.attempts'), String(r.attempts || 1)],
    [t('detail.handler'), r.handler || t('detail.unreported')],
    [t('detail.latency'), t('ms', { ms: latencyMs(x) })],
    [t('detail.peer'), r.peer || '—'],
    [t('detail.source'), has(`source.${x.source}`) ? t(`source.${x.source}`) : x.source],
  ];
  $('detail-kv').replaceChildren(...kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const diag = [];
  const said = remark(x);
  if (said) diag.push(h('p', { class: 'remark' }, said));
  if (r.rejection) {
    const j = r.rejection;
    const code = j.code != null ? `${j.code} ` : '';
    diag.push(h('p', { class: 'error-line rejection' }, code, tServer(`reject.${j.reason}`, j, j.message), j.param ? ` (${j.param})` : ''));
  }
  // A failed call to the gateway app is said once, in its own section below.
  if (r.error && !r.rejection && !(r.forward && r.forward.error)) diag.push(h('p', { class: 'error-line' }, errorWords(x)));
  if (r.checks && r.checks.length) {
    // What the server's admission checked, in order (wemp_proto::admission::Check).
    diag.push(h('h3', {}, t('detail.checks')), h('ul', { class: 'diagnostics checks' }, r.checks.map((c) => checkItem(c, r))));
  }
  if (r.forward) diag.push(...forwardNodes(r.forward));
  diag.push(...pairs(r.query, t('detail.query')), ...pairs(r.headers, t('detail.headers')));
  $('detail-diag').replaceChildren(...diag);
  $('detail-raw').textContent = prettyXml(r.raw_xml) || '—';
  $('detail-reply').textContent = prettyXml(r.reply_xml) || '—';
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
  es.addEventListener('entry', (e) => ingest(JSON.parse(e.data)));
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

// wemp console: plain JS, no build step, no network access beyond this server.
'use strict';

const BASE = document.querySelector('meta[name="wemp-base"]').content;
const CSRF = document.querySelector('meta[name="wemp-csrf"]').content;
const BANNER = '该公众号暂时无法提供服务，请稍后再试';
const $ = (id) => document.getElementById(id);

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

function icon(name) {
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
function h(tag, attrs, ...children) {
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

async function api(path, opts = {}) {
  const init = { credentials: 'same-origin', headers: {}, ...opts };
  if (init.method && init.method !== 'GET') init.headers['X-Wemp-Csrf'] = CSRF;
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${BASE}/api/${path}`, init);
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (res.status === 401) { location.reload(); }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 2500);
}

async function copy(text, what) {
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
  toast(`${what} copied`);
}

const state = {
  config: null,
  user: null,
  account: null, // the id of the account the simulator plays WeChat for
  chats: new Map(), // chatKey(account, openid) -> [nodes]
  exchanges: [],
  selected: null,
  names: new Map(),
};

// ---------------------------------------------------------------- views
function showView() {
  const view = (location.hash || '#chat').slice(1).split('/')[0];
  const known = ['chat', 'log', 'setup'].includes(view) ? view : 'chat';
  for (const v of ['chat', 'log', 'setup']) {
    $(`view-${v}`).hidden = v !== known;
    const tab = $(`tab-${v}`);
    if (v === known) tab.setAttribute('aria-current', 'page'); else tab.removeAttribute('aria-current');
  }
  if (known === 'setup') loadSetup();
}
window.addEventListener('hashchange', showView);

// ---------------------------------------------------------------- chat rendering
const URL_RE = /(https?:\/\/[^\s<>"'，。）]+)/g;
const ANCHOR_RE = /<a\s+href\s*=\s*["']([^"']+)["'][^>]*>(.*?)<\/a>/gi;

function link(href, text) {
  const safe = /^https?:\/\//i.test(href) ? href : null;
  return safe ? h('a', { href: safe, target: '_blank', rel: 'noopener noreferrer' }, text) : text;
}

/** Text as WeChat shows it: `<a href>` anchors and bare URLs clickable, the rest text. */
function richText(s) {
  const out = [];
  let last = 0;
  for (const m of s.matchAll(ANCHOR_RE)) {
    out.push(...bareLinks(s.slice(last, m.index)));
    out.push(link(m[1], m[2].replace(/<[^>]*>/g, '')));
    last = m.index + m[0].length;
  }
  out.push(...bareLinks(s.slice(last)));
  return out;
}

function bareLinks(s) {
  return s.split(URL_RE).map((part, i) => (i % 2 ? link(part, part) : part)).filter((p) => p !== '');
}

function bubble(side, ...content) {
  const avatar = h('span', { class: `avatar ${side}`, 'aria-hidden': 'true' }, side === 'me' ? userInitial() : 'W');
  return h('li', { class: `msg ${side}` }, avatar, h('div', { class: 'bubble' }, ...content));
}

function userInitial() {
  const u = state.config && state.config.users.find((x) => x.openid === state.user);
  return u ? [...u.name][0].toUpperCase() : 'U';
}

function notice(text, cls = '') {
  return h('li', { class: `notice ${cls}` }, h('span', {}, text));
}

function mediaBox(name, label, id, extra) {
  return h('div', { class: 'media-box' },
    h('span', { class: 'media-icon' }, icon(name)),
    h('div', {}, h('div', { class: 'media-label' }, label), extra ? h('div', { class: 'media-extra' }, extra) : null,
      h('code', { class: 'media-id', title: 'media id' }, id)));
}

function renderReply(r) {
  switch (r.type) {
    case 'text': return [bubble('bot', ...richText(r.content))];
    case 'image': return [bubble('bot', mediaBox('image', '[图片] Image', r.media_id))];
    case 'voice': return [bubble('bot', mediaBox('voice', '[语音] Voice', r.media_id))];
    case 'video': return [bubble('bot', mediaBox('video', `[视频] ${r.title || 'Video'}`, r.media_id, r.description))];
    case 'music': return [bubble('bot', mediaBox('music', `[音乐] ${r.title || 'Music'}`, r.thumb_media_id, r.description || r.music_url))];
    case 'news': return [newsCards(r.articles)];
    case 'transfer_customer_service': return [notice(r.kf_account ? `已转接到客服 ${r.kf_account} · Transferred to customer service` : '已转接到客服 · Transferred to customer service', 'transfer')];
    case 'none': return [];
    default: return [notice(`[${r.msg_type || r.type}] reply`)];
  }
}

function newsCards(articles) {
  const cards = articles.map((a, i) => {
    const placeholder = () => h('span', { class: 'news-pic placeholder' }, icon('image'));
    const pic = a.pic_url
      ? h('img', { src: a.pic_url, alt: '', class: 'news-pic', onerror: (e) => e.target.replaceWith(placeholder()) })
      : placeholder();
    const body = i === 0
      ? h('div', { class: 'news-main' }, h('div', { class: 'news-title' }, a.title), a.description ? h('div', { class: 'news-desc' }, a.description) : null)
      : h('div', { class: 'news-row' }, h('div', { class: 'news-title' }, a.title));
    return h('a', { class: `news-item ${i === 0 ? 'first' : 'rest'}`, href: /^https?:\/\//i.test(a.url) ? a.url : '#', target: '_blank', rel: 'noopener noreferrer' },
      i === 0 ? [pic, body] : [body, pic]);
  });
  return h('li', { class: 'msg bot news' }, h('span', { class: 'avatar bot', 'aria-hidden': 'true' }, 'W'), h('div', { class: 'news-card' }, cards));
}

function bannerNode(reason, server) {
  // What the server itself reported about the refused tries (a rejection's diagnostic).
  const said = [...new Set((server || []).flatMap((x) => (x.diagnostics && x.diagnostics.length ? x.diagnostics : (x.error ? [x.error] : []))))];
  return h('li', { class: 'notice banner', role: 'alert' },
    h('div', { class: 'banner-box' },
      h('div', { class: 'banner-text' }, BANNER),
      h('div', { class: 'banner-why' }, h('strong', {}, 'Why WeChat shows this: '), reason),
      said.length ? h('div', { class: 'banner-why server-said' }, h('strong', {}, 'The server says: '), said.join('; ')) : null));
}

/** The server answered `success` at its deadline: say so, and watch for the late reply. */
function deadlineNode(x) {
  return h('li', { class: 'notice deadline', role: 'status' },
    h('span', {}, h('strong', {}, 'Answered “success” at the server’s deadline '), `(${(x.latency_ms / 1000).toFixed(1)} s): `,
      'the handler was still running, so WeChat shows nothing now and does not retry. ',
      'Its reply goes to the late-reply sink (a customer-service message) when the handler finishes…'));
}

/** The late follow-up of a deadline answer: what the sink did with the reply. */
function lateNodes(x) {
  const secs = `${(x.latency_ms / 1000).toFixed(1)} s`;
  const reply = x.reply ? renderReply(x.reply) : [];
  switch (x.late_sink) {
    case 'delivered':
      return [notice(`Late reply sent as a customer-service message after ${secs}:`, 'late'), ...reply];
    case 'none':
      return [notice(`The handler finished after ${secs} without a reply: nothing was sent.`, 'late')];
    case 'logged':
      return [notice(`The late reply (after ${secs}) was only logged, not sent: no AppSecret is configured, so there is no customer-service API to send it through. The user never sees:`, 'late bad'),
        ...reply.map((n) => { n.classList.add('unsent'); return n; })];
    default: {
      const why = (x.diagnostics || []).join('; ') || x.late_sink;
      return [notice(`The late reply (after ${secs}) could not be sent: ${why}. The user never sees:`, 'late bad'),
        ...reply.map((n) => { n.classList.add('unsent'); return n; })];
    }
  }
}

/** Deadline answers waiting for their follow-up, by the server's delivery number. */
const lateWatch = new Map();

function watchLate(key, x) {
  const done = state.exchanges.find((e) => e.outcome === 'follow_up' && e.delivery === x.delivery);
  if (done) { showLate(key, done); return; }
  lateWatch.set(x.delivery, key);
}

function showLate(key, x) {
  const nodes = lateNodes(x);
  if (key === chatKey()) for (const n of nodes) addToChat(n);
  else state.chats.get(key).push(...nodes);
}

/** One conversation per account and user. */
function chatKey(account = state.account, user = state.user) {
  return `${account}\n${user}`;
}

function chat() {
  const key = chatKey();
  if (!state.chats.has(key)) state.chats.set(key, []);
  return state.chats.get(key);
}

function addToChat(node) {
  chat().push(node);
  $('messages').append(node);
  node.scrollIntoView({ block: 'end' });
}

function redrawChat() {
  const list = $('messages');
  list.replaceChildren(...chat());
  if (!chat().length) {
    list.append(h('li', { class: 'notice hint-notice' }, h('span', {}, 'Say something, tap the menu, or follow the account (＋).')));
  }
  const last = list.lastElementChild;
  if (last) last.scrollIntoView({ block: 'end' });
}

// ---------------------------------------------------------------- chat actions
let busy = 0;

async function perform(action, shown) {
  const user = state.user;
  const account = state.account;
  const key = chatKey(account, user);
  $('more-panel').hidden = true;
  $('more').setAttribute('aria-expanded', 'false');
  if (shown) addToChat(shown);
  const pending = h('li', { class: 'msg bot pending', 'aria-label': 'waiting for the bot' },
    h('span', { class: 'avatar bot', 'aria-hidden': 'true' }, 'W'), h('div', { class: 'bubble typing' }, h('i'), h('i'), h('i')));
  addToChat(pending);
  busy += 1;
  document.body.classList.add('busy');
  const started = performance.now();
  const timer = setInterval(() => {
    const s = Math.floor((performance.now() - started) / 1000);
    const per = state.config.timeout_ms / 1000;
    if (s >= per) pending.querySelector('.bubble').dataset.note = `WeChat retrying (try ${Math.min(state.config.tries, 1 + Math.floor(s / per))}/${state.config.tries})…`;
  }, 500);
  try {
    const res = await api('send', { method: 'POST', json: { user, action, account } });
    const nodes = [];
    const deadline = (res.server || []).find((x) => x.outcome === 'deadline' && x.delivery != null);
    if (res.sees.kind === 'reply') nodes.push(...renderReply(res.sees.reply));
    else if (res.sees.kind === 'banner') nodes.push(bannerNode(res.sees.reason, res.server));
    if (deadline) nodes.push(deadlineNode(deadline));
    replaceNode(key, pending, nodes);
    if (deadline) watchLate(key, deadline);
    addTries(action, res);
  } catch (e) {
    replaceNode(key, pending, [notice(`Console error: ${e.message}`, 'error')]);
  } finally {
    clearInterval(timer);
    busy -= 1;
    if (!busy) document.body.classList.remove('busy');
  }
}

function replaceNode(key, old, nodes) {
  const list = state.chats.get(key);
  const i = list.indexOf(old);
  if (i >= 0) list.splice(i, 1, ...nodes);
  if (old.isConnected) {
    old.replaceWith(...nodes);
    const last = $('messages').lastElementChild;
    if (last) last.scrollIntoView({ block: 'end' });
  }
}

function describe(action) {
  switch (action.kind) {
    case 'text': return `text “${action.content}”`;
    case 'image': return 'image';
    case 'location': return `location ${action.label || ''}`;
    case 'link': return `link ${action.title}`;
    case 'subscribe': return action.scene ? `follow via QR scene ${action.scene}` : 'follow';
    case 'unsubscribe': return 'unfollow';
    case 'scan': return `scan QR scene ${action.scene}`;
    case 'click': return `menu click ${action.key}`;
    case 'view': return `menu view ${action.url}`;
    default: return action.kind;
  }
}

function addTries(action, res) {
  const sees = res.sees.kind === 'reply' ? `reply (${res.sees.reply.type})` : res.sees.kind === 'banner' ? 'error banner' : 'nothing';
  const item = h('li', { class: `try-item ${res.sees.kind}` },
    h('div', { class: 'try-head' }, h('strong', {}, describe(action)),
      multiAccount() ? h('span', { class: 'badge account', title: 'account' }, accountLabel(res.account)) : null,
      h('span', { class: `badge ${res.sees.kind}` }, sees)),
    h('ol', { class: 'try-list' }, res.attempts.map((a, i) =>
      h('li', {}, `try ${i + 1} at +${a.started_ms} ms: ${a.outcome} in ${a.took_ms} ms`))),
    res.sees.kind === 'banner' ? h('p', { class: 'why' }, res.sees.reason) : null,
    (res.server || []).length ? h('ul', { class: 'server-notes', 'aria-label': 'What the server reported' }, res.server.map((x) =>
      h('li', {}, `server: ${OUTCOME_LABEL[x.outcome] || x.outcome}${x.error ? ` — ${x.error}` : ''}`))) : null,
    h('details', {}, h('summary', {}, 'XML sent'), h('pre', { class: 'xml' }, prettyXml(res.sent_xml))));
  $('tries').prepend(item);
}

function userNotice(text) {
  return h('li', { class: 'notice' }, h('span', {}, text));
}

function sendText(e) {
  e.preventDefault();
  const input = $('text');
  const content = input.value;
  if (!content.trim()) { input.focus(); return; }
  input.value = '';
  perform({ kind: 'text', content }, bubble('me', content));
  input.focus();
}

async function sendImage(file) {
  if (!file) return;
  try {
    const res = await fetch(`${BASE}/api/media`, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'X-Wemp-Csrf': CSRF, 'Content-Type': file.type || 'image/png' }, body: file,
    });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    const pic = new URL(body.url, location.href).href;
    perform({ kind: 'image', media_id: body.media_id, pic_url: pic },
      bubble('me', h('img', { src: body.url, alt: `uploaded image ${file.name}`, class: 'sent-img' }), h('code', { class: 'media-id' }, body.media_id)));
  } catch (e) {
    toast(`Upload failed: ${e.message}`);
  }
}

// ---------------------------------------------------------------- menu
function closeSubmenus(except) {
  for (const m of document.querySelectorAll('.submenu')) {
    if (m !== except) { m.hidden = true; m.previousElementSibling.setAttribute('aria-expanded', 'false'); }
  }
}

function menuAction(b) {
  if (b.type === 'click') {
    perform({ kind: 'click', key: b.key }, userNotice(`你点击了菜单「${b.name}」· CLICK ${b.key}`));
  } else if (b.type === 'view') {
    window.open(b.url, '_blank', 'noopener');
    perform({ kind: 'view', url: b.url }, userNotice(`你打开了「${b.name}」· VIEW ${b.url}`));
  }
}

function renderMenu(menu) {
  const bar = $('menu-buttons');
  bar.replaceChildren();
  const buttons = (menu && menu.button) || [];
  if (!buttons.length) return false;
  for (const b of buttons) {
    const cell = h('div', { class: 'menu-cell' });
    if (b.sub_button && b.sub_button.length) {
      const sub = h('div', { class: 'submenu', role: 'menu', hidden: true, 'aria-label': b.name });
      const btn = h('button', { type: 'button', class: 'menu-btn', 'aria-haspopup': 'menu', 'aria-expanded': 'false', role: 'menuitem',
        onclick: () => { const open = sub.hidden; closeSubmenus(sub); sub.hidden = !open; btn.setAttribute('aria-expanded', String(open)); if (open) sub.querySelector('button').focus(); } },
      h('span', { class: 'menu-lines', 'aria-hidden': 'true' }, '≡ '), b.name);
      for (const s of b.sub_button) {
        sub.append(h('button', { type: 'button', role: 'menuitem', class: 'sub-btn', onclick: () => { closeSubmenus(); btn.focus(); menuAction(s); } }, s.name));
      }
      cell.append(btn, sub);
    } else {
      cell.append(h('button', { type: 'button', class: 'menu-btn', role: 'menuitem', onclick: () => { closeSubmenus(); menuAction(b); } }, b.name));
    }
    bar.append(cell);
  }
  return true;
}

function setComposer(mode) {
  const hasMenu = $('menu-buttons').children.length > 0;
  const menu = hasMenu && mode === 'menu';
  $('menu-bar').hidden = !menu;
  $('input-bar').hidden = menu;
  $('to-menu').hidden = !hasMenu;
  if (!menu) $('more-panel').hidden = $('more-panel').hidden;
  closeSubmenus();
}

// ---------------------------------------------------------------- live log
const OUTCOME_LABEL = {
  reply: 'reply', no_reply: 'no reply', deadline: 'deadline', follow_up: 'late reply', handler_error: 'handler error',
  too_slow: 'too slow', abandoned: 'abandoned', rejected: 'rejected', error: 'error', verify: 'verify',
};

function typeOf(x) {
  if (x.method === 'GET') return 'verify';
  if (x.msg_type === 'event' && x.event) return `event:${x.event}`;
  return x.msg_type || '?';
}

function nameOf(openid) {
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
  return [d.toLocaleTimeString([], { hour12: false }), h('span', { class: 'ms' }, '.' + String(d.getMilliseconds()).padStart(3, '0'))];
}

function row(x) {
  const tr = h('tr', { tabindex: '0', 'data-id': x.id, 'data-outcome': x.outcome || '', 'aria-label': `Delivery ${x.id}: ${typeOf(x)} ${x.outcome || ''}`,
    onclick: () => select(x.id), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(x.id); } } },
  h('td', { class: 'mono' }, fmtTime(x.received_at_ms)),
  h('td', { title: x.openid || '' }, nameOf(x.openid)),
  h('td', {}, h('span', { class: 'type' }, typeOf(x).startsWith('event:') ? [h('span', { class: 'type-prefix' }, 'event:'), typeOf(x).slice(6)] : typeOf(x))),
  h('td', { class: 'col-summary' }, x.summary || '', x.attempt > 1 ? h('span', { class: 'retry' }, ` retry #${x.attempt}`) : null,
    x.diagnostics && x.diagnostics.length ? h('span', { class: 'diag-flag', title: x.diagnostics.join('\n') }, icon('warn')) : null),
  h('td', {}, x.mode || '—'),
  h('td', {}, h('span', { class: `badge ${x.outcome || ''}` }, OUTCOME_LABEL[x.outcome] || x.outcome || '…')),
  h('td', { class: 'num mono' }, String(x.latency_ms)),
  multiAccount() ? h('td', { class: 'col-account' }, h('span', { class: 'badge account', title: x.account || '' }, accountLabel(x.account))) : null);
  if (state.selected === x.id) tr.classList.add('selected');
  return tr;
}

function addOption(select, value, label) {
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

function redrawLog() {
  const rows = state.exchanges.filter(matches).reverse().map(row);
  $('log-rows').replaceChildren(...rows);
  $('log-empty').hidden = rows.length > 0;
}

/** Indents XML one element per line; a leaf stays on one line with its text or CDATA. */
function prettyXml(xml) {
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
    ...(multiAccount() ? [['Account', x.account ? `${accountLabel(x.account)} (${x.account})` : 'none of the console’s accounts']] : []),
    ['Received', new Date(x.received_at_ms).toLocaleString()],
    ['User', x.openid || '—'],
    ['Type', typeOf(x)],
    ['MsgId', x.msg_id || '—'],
    ['Mode', x.mode || '—'],
    ['Outcome', OUTCOME_LABEL[x.outcome] || x.outcome || '—'],
    ['HTTP status', x.status == null ? '—' : String(x.status)],
    ['Dedup', x.dedup || (x.attempt > 1 ? `retry #${x.attempt} (not reported by the server)` : 'not reported by the server')],
    ['Handler', x.handler || 'not reported by the server'],
    ['Latency', `${x.latency_ms} ms`],
    ['Source', x.source],
  ];
  $('detail-kv').replaceChildren(...kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const diag = [];
  if (x.error) diag.push(h('p', { class: 'error-line' }, x.error));
  if (x.diagnostics && x.diagnostics.length) {
    diag.push(h('h3', {}, 'Verification'), h('ul', { class: 'diagnostics' }, x.diagnostics.map((d) => h('li', {}, d))));
  }
  $('detail-diag').replaceChildren(...diag);
  $('detail-raw').textContent = prettyXml(x.raw_xml) || '—';
  $('detail-reply').textContent = prettyXml(x.reply_xml) || '—';
  $('detail').hidden = false;
  document.body.classList.add('detail-open');
  $('detail').focus({ preventScroll: true });
}

function closeDetail() {
  $('detail').hidden = true;
  document.body.classList.remove('detail-open');
  const tr = $('log-rows').querySelector('tr.selected');
  state.selected = null;
  if (tr) { tr.classList.remove('selected'); tr.focus(); }
}

function connectFeed() {
  const es = new EventSource(`${BASE}/api/events`);
  es.addEventListener('open', () => { $('live').textContent = 'live'; $('live').className = 'live on'; });
  es.addEventListener('error', () => { $('live').textContent = 'reconnecting…'; $('live').className = 'live off'; });
  es.addEventListener('exchange', (e) => ingest(JSON.parse(e.data)));
}

async function loadHistory() {
  try {
    const f = new FormData($('filters'));
    const q = new URLSearchParams();
    if (f.get('account')) q.set('account', f.get('account'));
    if (f.get('user')) q.set('user', f.get('user'));
    const t = f.get('type');
    if (t && !t.startsWith('event:') && t !== 'verify') q.set('type', t);
    const res = await api(`history?${q}`);
    for (const x of res.items) ingest(x);
    redrawLog();
    toast(`${res.items.length} entries from the message log`);
  } catch (e) {
    toast(`History: ${e.message}`);
  }
}

// ---------------------------------------------------------------- setup
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
async function loadSetup(force) {
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

async function loadDoctor() {
  const list = $('checks');
  list.replaceChildren(h('li', { class: 'hint' }, 'Running checks…'));
  try {
    const res = await api('doctor');
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

async function reloadRules() {
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

// ---------------------------------------------------------------- start
async function start() {
  showView();
  connectFeed();
  let cfg;
  try {
    cfg = await api('config');
  } catch (e) {
    $('messages').append(notice(`Cannot load the console: ${e.message}`, 'error'));
    return;
  }
  state.config = cfg;
  for (const u of cfg.users) state.names.set(u.openid, u.name);
  $('user').replaceChildren(...cfg.users.map((u) => h('option', { value: u.openid }, `${u.name} · ${u.openid.slice(0, 8)}…`)));
  for (const u of cfg.users) addOption($('f-user'), u.openid, u.name);
  state.user = cfg.users[0].openid;
  const wanted = new URLSearchParams(location.search).get('account');
  state.account = (cfg.accounts.find((a) => a.id === wanted) || cfg.accounts[0]).id;
  if (multiAccount()) {
    document.body.classList.add('multi-account');
    for (const a of cfg.accounts) addOption($('f-account'), a.id, accountLabel(a.id));
    $('f-account-label').hidden = false;
    $('log-account-h').hidden = false;
    $('menu-note').hidden = !(cfg.menu && cfg.menu.button && cfg.menu.button.length);
  }
  showAccount();
  $('timeout-note').textContent = String(cfg.timeout_ms / 1000);
  $('tries-note').textContent = String(cfg.tries);
  $('load-history').hidden = !cfg.has_log;
  $('rerun-doctor').hidden = !cfg.has_doctor;
  $('reload-rules').hidden = !cfg.has_rules;
  const hasMenu = renderMenu(cfg.menu);
  setComposer(hasMenu ? 'menu' : 'keyboard');
  redrawChat();
  for (const x of state.exchanges) {
    if (x.openid) addOption($('f-user'), x.openid, nameOf(x.openid));
    if (x.account && multiAccount()) addOption($('f-account'), x.account, accountLabel(x.account));
  }
  redrawLog();
  if ((location.hash || '').startsWith('#setup')) loadSetup();
}

// ---------------------------------------------------------------- accounts
const multiAccount = () => !!(state.config && state.config.accounts.length > 1);
const accountOf = (id) => state.config && state.config.accounts.find((a) => a.id === id);

/** What the page calls an account: its name, else its original id, else its id. */
function accountLabel(id) {
  const a = accountOf(id);
  if (!a) return id || '—';
  return a.label || a.name || a.original_id || a.id || 'Official Account';
}

/** Shows the selected account: header, phone title, the simulator's notes. */
function showAccount() {
  const a = accountOf(state.account);
  const title = a.name || a.original_id || 'Official Account';
  $('phone-title').textContent = title;
  if (multiAccount()) {
    // Built once, so the select keeps the focus while the user switches.
    if (!$('account-select')) {
      const select = h('select', { id: 'account-select', class: 'account-select', 'aria-label': 'Account to play WeChat for',
        onchange: (e) => selectAccount(e.target.value) },
      state.config.accounts.map((x) => h('option', { value: x.id }, `${accountLabel(x.id)} · ${x.path || x.endpoint}`)));
      $('account').replaceChildren(h('label', { for: 'account-select', class: 'account-label' }, 'Account'), select,
        h('span', { id: 'account-mode' }));
    }
    $('account-select').value = a.id;
    $('account-mode').replaceChildren(h('span', { class: `badge mode ${a.mode}` }, a.mode));
  } else {
    $('account').replaceChildren(h('span', {}, title), h('span', { class: `badge mode ${a.mode}` }, a.mode));
  }
  $('mode-note').textContent = a.mode === 'plain' ? '' : ` and encrypted (${a.mode} mode)`;
  $('endpoint-note').textContent = a.endpoint;
}

/** Switches the simulator, the setup page and an account filter of the log to account `id`. */
function selectAccount(id) {
  if (!accountOf(id) || id === state.account) return;
  state.account = id;
  showAccount();
  redrawChat();
  if ($('f-account').value) { $('f-account').value = id; redrawLog(); }
  if (!$('view-setup').hidden) loadSetup();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const el of document.querySelectorAll('[data-icon]')) el.append(icon(el.dataset.icon));
  $('input-bar').addEventListener('submit', sendText);
  $('user').addEventListener('change', (e) => { state.user = e.target.value; redrawChat(); });
  $('clear-chat').addEventListener('click', () => { state.chats.set(chatKey(), []); redrawChat(); });
  $('to-keyboard').addEventListener('click', () => { setComposer('keyboard'); $('text').focus(); });
  $('to-menu').addEventListener('click', () => { setComposer('menu'); $('more-panel').hidden = true; const b = $('menu-buttons').querySelector('button'); if (b) b.focus(); });
  $('more').addEventListener('click', () => {
    const p = $('more-panel');
    p.hidden = !p.hidden;
    $('more').setAttribute('aria-expanded', String(!p.hidden));
    if (!p.hidden) p.querySelector('.tile').focus();
  });
  $('image-file').addEventListener('change', (e) => { sendImage(e.target.files[0]); e.target.value = ''; });
  $('act-follow').addEventListener('click', () => perform({ kind: 'subscribe' }, userNotice('你关注了公众号 · subscribe')));
  $('act-unfollow').addEventListener('click', () => perform({ kind: 'unsubscribe' }, userNotice('你取消了关注 · unsubscribe')));
  for (const b of document.querySelectorAll('[data-dialog]')) {
    b.addEventListener('click', () => $(b.dataset.dialog).showModal());
  }
  $('form-location').addEventListener('submit', (e) => {
    if (e.submitter && e.submitter.value !== 'ok') return;
    const f = new FormData(e.target);
    const action = { kind: 'location', lat: Number(f.get('lat')), lon: Number(f.get('lon')), scale: Number(f.get('scale') || 15), label: f.get('label') };
    perform(action, bubble('me', h('div', { class: 'loc' }, icon('location'), h('strong', {}, action.label || 'Location'), h('div', { class: 'media-extra' }, `${action.lat}, ${action.lon}`))));
  });
  $('form-link').addEventListener('submit', (e) => {
    if (e.submitter && e.submitter.value !== 'ok') return;
    const f = new FormData(e.target);
    const action = { kind: 'link', title: f.get('title'), description: f.get('description'), url: f.get('url') };
    perform(action, bubble('me', h('div', { class: 'link-card' }, h('strong', {}, action.title), h('div', { class: 'media-extra' }, action.description), link(action.url, action.url))));
  });
  $('form-scan').addEventListener('submit', (e) => {
    if (e.submitter && e.submitter.value !== 'ok') return;
    const f = new FormData(e.target);
    const scene = String(f.get('scene'));
    if (f.get('as') === 'scan') perform({ kind: 'scan', scene }, userNotice(`你扫描了二维码 · SCAN scene ${scene}`));
    else perform({ kind: 'subscribe', scene }, userNotice(`你扫码关注了公众号 · subscribe, scene ${scene}`));
  });
  $('filters').addEventListener('change', redrawLog);
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  $('clear-log').addEventListener('click', () => { state.exchanges = []; $('log-count').textContent = '0'; closeDetail(); redrawLog(); });
  $('load-history').addEventListener('click', loadHistory);
  $('close-detail').addEventListener('click', closeDetail);
  $('rerun-doctor').addEventListener('click', loadDoctor);
  $('reload-rules').addEventListener('click', reloadRules);
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (document.querySelector('.submenu:not([hidden])')) { closeSubmenus(); return; }
    if (!$('detail').hidden) closeDetail();
  });
  document.addEventListener('click', (e) => { if (!e.target.closest('.menu-cell')) closeSubmenus(); });
  start();
});

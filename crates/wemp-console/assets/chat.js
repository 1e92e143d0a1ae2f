// ---------------------------------------------------------------- chat rendering
import { $, api, h, icon, toast } from './dom.js';
import { accountLabel, kindOf, multiAccount, state } from './state.js';
import { errorWords, lateSink, latencyMs, outcomeLabel, outcomeOf, prettyXml } from './log.js';
import { has, t, tNodes, tServer } from './i18n.js';

const BANNER = '该公众号暂时无法提供服务，请稍后再试';
const URL_RE = /(https?:\/\/[^\s<>"'，。）]+)/g;
const ANCHOR_RE = /<a\s+href\s*=\s*["']([^"']+)["'][^>]*>(.*?)<\/a>/gi;

export function link(href, text) {
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

export function bubble(side, ...content) {
  const avatar = h('span', { class: `avatar ${side}`, 'aria-hidden': 'true' }, side === 'me' ? userInitial() : 'W');
  return h('li', { class: `msg ${side}` }, avatar, h('div', { class: 'bubble' }, ...content));
}

function userInitial() {
  const u = state.config && state.config.users.find((x) => x.openid === state.user);
  return u ? [...u.name][0].toUpperCase() : 'U';
}

export function notice(text, cls = '') {
  return h('li', { class: `notice ${cls}` }, h('span', {}, text));
}

function mediaBox(name, label, id, extra) {
  return h('div', { class: 'media-box' },
    h('span', { class: 'media-icon' }, icon(name)),
    h('div', {}, h('div', { class: 'media-label' }, label), extra ? h('div', { class: 'media-extra' }, extra) : null,
      h('code', { class: 'media-id', title: t('reply.media-id') }, id)));
}

function renderReply(r) {
  switch (r.type) {
    case 'text': return [bubble('bot', ...richText(r.content))];
    case 'image': return [bubble('bot', mediaBox('image', t('reply.image'), r.media_id))];
    case 'voice': return [bubble('bot', mediaBox('voice', t('reply.voice'), r.media_id))];
    case 'video': return [bubble('bot', mediaBox('video', t('reply.video', { title: r.title || t('reply.video.untitled') }), r.media_id, r.description))];
    case 'music': return [bubble('bot', mediaBox('music', t('reply.music', { title: r.title || t('reply.music.untitled') }), r.thumb_media_id, r.description || r.music_url))];
    case 'news': return [newsCards(r.articles)];
    case 'transfer_customer_service': return [notice(r.kf_account ? t('reply.transfer.to', { kf: r.kf_account }) : t('reply.transfer'), 'transfer')];
    case 'none': return [];
    default: return [notice(t('reply.other', { type: r.msg_type || r.type }))];
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

/** What the server itself said about an entry: its refusal or its error, in the page's words. */
function serverSaid(x) {
  const j = x.record.rejection;
  if (j) return `${j.code != null ? `${j.code} ` : ''}${tServer(`reject.${j.reason}`, j, j.message)}`;
  return errorWords(x);
}

/** Why WeChat shows its banner, in the page's words when the server sent the failure's kind. */
function bannerWhy(sees) {
  if (sees.problems && sees.problems.length) return sees.problems.map(finding).join(t('list.sep'));
  // An unreadable answer: its kind worded too ({reason} is the English otherwise).
  const u = sees.unreadable;
  const params = u ? { ...sees, reason: tServer(`unreadable.${u.code}`, u, u.text) } : sees;
  return tServer(sees.code ? `banner.${sees.code}` : null, params, sees.reason);
}

/** One of WeChat's findings about a reply, in the page's words (the server's English else). */
function finding(f) {
  return typeof f === 'string' ? f : tServer(`problem.${f.code}`, f, f.text);
}

function bannerNode(reason, server) {
  // What the server itself reported about the refused tries (a rejection's diagnostic).
  const said = [...new Set((server || []).map(serverSaid).filter(Boolean))];
  return h('li', { class: 'notice banner', role: 'alert' },
    h('div', { class: 'banner-box' },
      h('div', { class: 'banner-text' }, BANNER),
      h('div', { class: 'banner-why' }, h('strong', {}, t('banner.why')), reason),
      said.length ? h('div', { class: 'banner-why server-said' }, h('strong', {}, t('banner.server-said')), said.join('; ')) : null));
}

/** `ms` as seconds with one decimal, in the page's words. */
const secs = (ms) => t('secs', { s: (ms / 1000).toFixed(1) });

/**
 * The server answered `success` at its deadline: say so, and watch for the late reply. A Mini
 * Program's push is always answered so (it takes no passive reply): its reply goes out through
 * the customer-service API, and the notice says that instead.
 */
function deadlineNode(x) {
  const mini = kindOf(x.account) === 'miniprogram';
  const [note, head] = mini ? ['mini.success', 'mini.success.head'] : ['deadline.note', 'deadline.head'];
  return h('li', { class: `notice deadline${mini ? ' cs' : ''}`, role: 'status' },
    h('span', {}, ...tNodes(note, { head: h('strong', {}, t(head)), secs: secs(latencyMs(x)) })));
}

/** A reply the user gets as a customer-service message: its bubbles say so. */
function viaCustomerService(nodes) {
  for (const n of nodes) {
    n.classList.add('cs');
    const b = n.querySelector('.bubble, .news-card');
    if (b) b.prepend(h('div', { class: 'via-cs' }, t('bubble.cs')));
  }
  return nodes;
}

/** The late follow-up of a deadline answer: what the sink did with the reply. */
function lateNodes(x) {
  const after = secs(latencyMs(x));
  const reply = x.reply ? renderReply(x.reply) : [];
  const sink = lateSink(x);
  switch (sink) {
    case 'delivered':
      return kindOf(x.account) === 'miniprogram'
        ? [notice(t('mini.delivered', { secs: after }), 'late cs'), ...viaCustomerService(reply)]
        : [notice(t('late.delivered', { secs: after }), 'late'), ...reply];
    case 'none':
      return [notice(t('late.none', { secs: after }), 'late')];
    case 'logged':
      return [notice(t('late.logged', { secs: after }), 'late bad'),
        ...reply.map((n) => { n.classList.add('unsent'); return n; })];
    default: {
      const o = x.record.outcome.sink;
      const why = (o && o.message) || (has(`sink.${sink}`) ? t(`sink.${sink}`) : sink);
      return [notice(t('late.failed', { secs: after, why }), 'late bad'),
        ...reply.map((n) => { n.classList.add('unsent'); return n; })];
    }
  }
}

/** Deadline answers waiting for their follow-up, by the server's delivery number. */
export const lateWatch = new Map();

function watchLate(key, x) {
  const done = state.exchanges.find((e) => e.source === 'observer' && lateSink(e) && e.record.id === x.record.id);
  if (done) { showLate(key, done); return; }
  lateWatch.set(x.record.id, key);
}

export function showLate(key, x) {
  const nodes = lateNodes(x);
  if (key === chatKey()) for (const n of nodes) addToChat(n);
  else state.chats.get(key).push(...nodes);
}

/** One conversation per account and user. */
export function chatKey(account = state.account, user = state.user) {
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

export function redrawChat() {
  const list = $('messages');
  if (!state.account) {
    // A third-party platform before any account authorized it: how to get one.
    list.replaceChildren(h('li', { class: 'notice hint-notice', id: 'no-account-notice' }, h('span', {}, t('chat.no-account'))));
    return;
  }
  list.replaceChildren(...chat());
  if (!chat().length) {
    list.append(h('li', { class: 'notice hint-notice' }, h('span', {}, t('chat.empty'))));
  }
  const last = list.lastElementChild;
  if (last) last.scrollIntoView({ block: 'end' });
}

// ---------------------------------------------------------------- chat actions
let busy = 0;

export async function perform(action, shown) {
  // A message sent while the page still loads its settings goes once they are there (the
  // account and the user come with them), rather than being dropped.
  await state.ready;
  const user = state.user;
  const account = state.account;
  if (!account) { toast(t('chat.no-account')); return; }
  const key = chatKey(account, user);
  $('more-panel').hidden = true;
  $('more').setAttribute('aria-expanded', 'false');
  if (shown) addToChat(shown);
  const pending = h('li', { class: 'msg bot pending', 'aria-label': t('chat.waiting') },
    h('span', { class: 'avatar bot', 'aria-hidden': 'true' }, 'W'), h('div', { class: 'bubble typing' }, h('i'), h('i'), h('i')));
  addToChat(pending);
  busy += 1;
  document.body.classList.add('busy');
  const started = performance.now();
  const timer = setInterval(() => {
    const s = Math.floor((performance.now() - started) / 1000);
    const per = state.config.timeout_ms / 1000;
    if (s >= per) pending.querySelector('.bubble').dataset.note = t('chat.retrying', { n: Math.min(state.config.tries, 1 + Math.floor(s / per)), of: state.config.tries });
  }, 500);
  try {
    const res = await api('send', { method: 'POST', json: { user, action, account } });
    const nodes = [];
    const deadline = (res.server || []).find((x) => x.source === 'observer' && outcomeOf(x) === 'deadline');
    if (res.sees.kind === 'reply') nodes.push(...renderReply(res.sees.reply));
    else if (res.sees.kind === 'banner') nodes.push(bannerNode(bannerWhy(res.sees), res.server));
    if (deadline) nodes.push(deadlineNode(deadline));
    replaceNode(key, pending, nodes);
    if (deadline) watchLate(key, deadline);
    addTries(action, res);
  } catch (e) {
    replaceNode(key, pending, [notice(t('chat.error', { error: e.message }), 'error')]);
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
    case 'text': return t('action.text', { content: action.content });
    case 'image': return t('action.image');
    case 'location': return t('action.location', { label: action.label || '' });
    case 'link': return t('action.link', { title: action.title });
    case 'subscribe': return action.scene ? t('action.subscribe.scene', { scene: action.scene }) : t('action.subscribe');
    case 'unsubscribe': return t('action.unsubscribe');
    case 'scan': return t('action.scan', { scene: action.scene });
    case 'click': return t('action.click', { key: action.key });
    case 'view': return t('action.view', { url: action.url });
    default: return action.kind;
  }
}

function addTries(action, res) {
  const sees = res.sees.kind === 'reply' ? t('sees.reply', { type: res.sees.reply.type }) : res.sees.kind === 'banner' ? t('sees.banner') : t('sees.nothing');
  const item = h('li', { class: `try-item ${res.sees.kind}` },
    h('div', { class: 'try-head' }, h('strong', {}, describe(action)),
      multiAccount() ? h('span', { class: 'badge account', title: t('log.account') }, accountLabel(res.account)) : null,
      h('span', { class: `badge ${res.sees.kind}` }, sees)),
    h('ol', { class: 'try-list' }, res.attempts.map((a, i) =>
      h('li', {}, t('tries.try', { n: i + 1, at: a.started_ms, outcome: tServer(`try.${a.code}`, a, a.outcome), took: a.took_ms })))),
    res.sees.kind === 'banner' ? h('p', { class: 'why' }, bannerWhy(res.sees)) : null,
    (res.warnings || []).map((w) => h('p', { class: 'why warning' }, t('tries.warning', { warning: finding(w) }))),
    (res.server || []).length ? h('ul', { class: 'server-notes', 'aria-label': t('tries.server-notes') }, res.server.map((x) =>
      h('li', {}, serverSaid(x) ? t('tries.server.error', { outcome: outcomeLabel(outcomeOf(x)), error: serverSaid(x) }) : t('tries.server', { outcome: outcomeLabel(outcomeOf(x)) })))) : null,
    h('details', {}, h('summary', {}, t('tries.xml')), h('pre', { class: 'xml' }, prettyXml(res.sent_xml))));
  $('tries').prepend(item);
}

export function userNotice(text) {
  return h('li', { class: 'notice' }, h('span', {}, text));
}

export function sendText(e) {
  e.preventDefault();
  const input = $('text');
  const content = input.value;
  if (!content.trim()) { input.focus(); return; }
  input.value = '';
  perform({ kind: 'text', content }, bubble('me', content));
  input.focus();
}

export async function sendImage(file) {
  if (!file) return;
  try {
    const body = await api('media', { method: 'POST', headers: { 'Content-Type': file.type || 'image/png' }, body: file });
    const pic = new URL(body.url, location.href).href;
    perform({ kind: 'image', media_id: body.media_id, pic_url: pic },
      bubble('me', h('img', { src: body.url, alt: t('image.alt', { name: file.name }), class: 'sent-img' }), h('code', { class: 'media-id' }, body.media_id)));
  } catch (e) {
    toast(t('image.failed', { error: e.message }));
  }
}

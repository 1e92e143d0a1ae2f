// wemp console: plain JS, no build step, no network access beyond this server.
import { $, api, h, icon } from './dom.js';
import { accountLabel, multiAccount, state } from './state.js';
import { bubble, chatKey, link, notice, perform, redrawChat, sendImage, sendText, userNotice } from './chat.js';
import { closeSubmenus, renderMenu, setComposer } from './menu.js';
import { addOption, closeDetail, connectFeed, loadHistory, nameOf, redrawLog } from './log.js';
import { loadDoctor, loadSetup, reloadRules } from './setup.js';
import { applyAccounts, refreshAccounts } from './accounts.js';
import { LANGS, lang, setLang, t, translatePage } from './i18n.js';

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

// ---------------------------------------------------------------- start
async function start() {
  showView();
  connectFeed();
  let cfg;
  try {
    cfg = await api('config');
  } catch (e) {
    $('messages').append(notice(t('start.failed', { error: e.message }), 'error'));
    return;
  }
  state.config = cfg;
  for (const u of cfg.users) state.names.set(u.openid, u.name);
  $('user').replaceChildren(...cfg.users.map((u) => h('option', { value: u.openid }, `${u.name} · ${u.openid.slice(0, 8)}…`)));
  for (const u of cfg.users) addOption($('f-user'), u.openid, u.name);
  state.user = cfg.users[0].openid;
  applyAccounts(cfg);
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

// ---------------------------------------------------------------- wiring
document.addEventListener('DOMContentLoaded', () => {
  translatePage();
  $('lang').replaceChildren(...LANGS.map(([code, name]) => h('option', { value: code, lang: code }, name)));
  $('lang').value = lang;
  $('lang').addEventListener('change', (e) => setLang(e.target.value));
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
  $('act-follow').addEventListener('click', () => perform({ kind: 'subscribe' }, userNotice(t('notice.subscribe'))));
  $('act-unfollow').addEventListener('click', () => perform({ kind: 'unsubscribe' }, userNotice(t('notice.unsubscribe'))));
  for (const b of document.querySelectorAll('[data-dialog]')) {
    b.addEventListener('click', () => $(b.dataset.dialog).showModal());
  }
  $('form-location').addEventListener('submit', (e) => {
    if (e.submitter && e.submitter.value !== 'ok') return;
    const f = new FormData(e.target);
    const action = { kind: 'location', lat: Number(f.get('lat')), lon: Number(f.get('lon')), scale: Number(f.get('scale') || 15), label: f.get('label') };
    perform(action, bubble('me', h('div', { class: 'loc' }, icon('location'), h('strong', {}, action.label || t('tile.location')), h('div', { class: 'media-extra' }, `${action.lat}, ${action.lon}`))));
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
    if (f.get('as') === 'scan') perform({ kind: 'scan', scene }, userNotice(t('notice.scan', { scene })));
    else perform({ kind: 'subscribe', scene }, userNotice(t('notice.subscribe.scene', { scene })));
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
  // Accounts come and go while the page is open (a third-party platform's authorizers): read
  // them again when the live log names one the page does not know, or the page is back in view.
  document.addEventListener('wemp:unknown-account', () => refreshAccounts(2));
  window.addEventListener('focus', () => refreshAccounts());
  state.ready = start();
});

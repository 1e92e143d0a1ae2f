// ---------------------------------------------------------------- accounts
import { $, api, h } from './dom.js';
import { accountLabel, accountOf, multiAccount, state } from './state.js';
import { redrawChat } from './chat.js';
import { addOption, modeLabel, redrawLog } from './log.js';
import { loadAuthorizers, loadSetup } from './setup.js';
import { t } from './i18n.js';

/**
 * Takes the accounts of `cfg` (the console's config): keeps the chosen account while it is
 * still there, else picks the one the URL names, else the first (none while a third-party
 * platform has no authorizer yet), and shows them.
 */
export function applyAccounts(cfg) {
  state.config = cfg;
  const ids = cfg.accounts.map((a) => a.id);
  if (!ids.includes(state.account)) {
    const wanted = new URLSearchParams(location.search).get('account');
    state.account = ids.includes(wanted) ? wanted : (ids[0] ?? null);
  }
  const multi = multiAccount();
  document.body.classList.toggle('multi-account', multi);
  if (multi) for (const a of cfg.accounts) addOption($('f-account'), a.id, accountLabel(a.id));
  $('f-account-label').hidden = !multi;
  $('log-account-h').hidden = !multi;
  $('menu-note').hidden = !(multi && cfg.menu && cfg.menu.button && cfg.menu.button.length);
  showAccount();
}

let refreshing = null;
/**
 * Reads the console's config again and takes its accounts when they changed: a third-party
 * platform's authorizers come and go while the page is open. Asked when the live log shows
 * a delivery for an account the page does not know (`again`: the server completes an
 * authorization just after answering its push, so an unchanged list is read once or twice
 * more, a few seconds apart), when the account picker is opened and when the page gets the
 * focus back — never on a timer of its own; one read at a time.
 */
export function refreshAccounts(again = 0) {
  if (!state.config || refreshing) return refreshing;
  refreshing = (async () => {
    let changed = false;
    try {
      const cfg = await api('config');
      const before = state.config.accounts.map((a) => a.id).join('\n');
      changed = cfg.accounts.map((a) => a.id).join('\n') !== before;
      if (changed) {
        const had = state.account;
        applyAccounts(cfg);
        if (state.account !== had) {
          redrawChat();
          if (!$('view-setup').hidden) loadSetup();
        }
        redrawLog();
        loadAuthorizers();
      }
    } catch {
      // Kept as they are; the next trigger tries again.
    } finally {
      refreshing = null;
    }
    if (!changed && again > 0) setTimeout(() => refreshAccounts(again - 1), 1500);
  })();
  return refreshing;
}

/** Shows the selected account: header, phone title, the simulator's notes. */
export function showAccount() {
  const a = accountOf(state.account);
  if (!a) {
    // A third-party platform before any account authorized it.
    $('phone').dataset.kind = 'official_account';
    $('phone-title').replaceChildren(t('account.none'));
    $('account').replaceChildren(h('span', { class: 'badge', id: 'no-account' }, t('account.none')));
    $('mode-note').textContent = '';
    $('kind-note').hidden = true;
    $('endpoint-note').textContent = '—';
    return;
  }
  const title = a.name || a.original_id || t('account.default');
  // A WeCom app's chat looks like WeCom's (its name, 企业微信 and its AgentID in the header; a
  // service provider's suite, which has no AgentID, its SuiteID); a Mini Program's says that
  // replies go out through the customer-service API.
  const kind = a.kind || 'official_account';
  $('phone').dataset.kind = kind;
  const sub = kind === 'wecom' ? (a.agentid ? t('kind.wecom', { agentid: a.agentid }) : t('kind.wecom.suite', { suiteid: a.appid }))
    : kind === 'miniprogram' ? t('kind.miniprogram') : null;
  $('phone-title').replaceChildren(title, sub ? h('span', { class: 'phone-kind', id: 'phone-kind' }, sub) : '');
  if (multiAccount()) {
    // Built once, so the select keeps the focus while the user switches.
    if (!$('account-select')) {
      const select = h('select', { id: 'account-select', class: 'account-select', 'aria-label': t('account.select'),
        onchange: (e) => selectAccount(e.target.value), onfocus: () => refreshAccounts() });
      $('account').replaceChildren(h('label', { for: 'account-select', class: 'account-label' }, t('log.account')), select,
        h('span', { id: 'account-mode' }));
    }
    const select = $('account-select');
    const ids = state.config.accounts.map((x) => x.id).join('\n');
    if (select.dataset.ids !== ids) {
      // Rebuilt only when the accounts changed, so an open picker is left alone.
      select.dataset.ids = ids;
      select.replaceChildren(...state.config.accounts.map((x) => h('option', { value: x.id },
        // A third-party platform's authorizer, added while the server runs, says so.
        [accountLabel(x.id), x.path || x.endpoint, x.component ? t('account.authorizer') : null].filter(Boolean).join(' · '))));
    }
    $('account-select').value = a.id;
    $('account-mode').replaceChildren(h('span', { class: `badge mode ${a.mode}` }, modeLabel(a.mode)));
  } else {
    $('account').replaceChildren(h('span', {}, title), h('span', { class: `badge mode ${a.mode}` }, modeLabel(a.mode)));
  }
  $('mode-note').textContent = a.mode === 'plain' ? '' : t('deliveries.encrypted', { mode: modeLabel(a.mode) });
  $('kind-note').textContent = kind === 'miniprogram' ? t('deliveries.miniprogram') : '';
  $('kind-note').hidden = kind !== 'miniprogram';
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

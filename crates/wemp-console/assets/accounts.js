// ---------------------------------------------------------------- accounts
import { $, h } from './dom.js';
import { accountLabel, accountOf, multiAccount, state } from './state.js';
import { redrawChat } from './chat.js';
import { modeLabel, redrawLog } from './log.js';
import { loadSetup } from './setup.js';
import { t } from './i18n.js';

/** Shows the selected account: header, phone title, the simulator's notes. */
export function showAccount() {
  const a = accountOf(state.account);
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
        onchange: (e) => selectAccount(e.target.value) },
      state.config.accounts.map((x) => h('option', { value: x.id },
        // A third-party platform's authorizer, added while the server runs, says so.
        [accountLabel(x.id), x.path || x.endpoint, x.component ? t('account.authorizer') : null].filter(Boolean).join(' · '))));
      $('account').replaceChildren(h('label', { for: 'account-select', class: 'account-label' }, t('log.account')), select,
        h('span', { id: 'account-mode' }));
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

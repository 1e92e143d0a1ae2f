// What the page knows: the console's config, the chosen account and user, the chats, the log.
import { t } from './i18n.js';

export const state = {
  config: null,
  user: null,
  account: null, // the id of the account the simulator plays WeChat for
  chats: new Map(), // chatKey(account, openid) -> [nodes]
  exchanges: [],
  selected: null,
  names: new Map(),
  // The page's start (its settings loaded): what is sent before then waits for it.
  ready: Promise.resolve(),
};

// The accounts the console serves.
export const multiAccount = () => !!(state.config && state.config.accounts.length > 1);
export const accountOf = (id) => state.config && state.config.accounts.find((a) => a.id === id);
/** The kind of account `id`: `official_account`, `wecom` or `miniprogram`. */
export const kindOf = (id) => (accountOf(id) || {}).kind || 'official_account';

/** What the page calls an account: its name, else its original id, else its id. */
export function accountLabel(id) {
  const a = accountOf(id);
  if (!a) return id || '—';
  return a.label || a.name || a.original_id || a.id || t('account.default');
}

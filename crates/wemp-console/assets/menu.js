// ---------------------------------------------------------------- menu
import { $, h } from './dom.js';
import { perform, userNotice } from './chat.js';
import { t } from './i18n.js';

export function closeSubmenus(except) {
  for (const m of document.querySelectorAll('.submenu')) {
    if (m !== except) { m.hidden = true; m.previousElementSibling.setAttribute('aria-expanded', 'false'); }
  }
}

function menuAction(b) {
  if (b.type === 'click') {
    perform({ kind: 'click', key: b.key }, userNotice(t('notice.click', { name: b.name, key: b.key })));
  } else if (b.type === 'view') {
    window.open(b.url, '_blank', 'noopener');
    perform({ kind: 'view', url: b.url }, userNotice(t('notice.view', { name: b.name, url: b.url })));
  }
}

export function renderMenu(menu) {
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

export function setComposer(mode) {
  const hasMenu = $('menu-buttons').children.length > 0;
  const menu = hasMenu && mode === 'menu';
  $('menu-bar').hidden = !menu;
  $('input-bar').hidden = menu;
  $('to-menu').hidden = !hasMenu;
  if (!menu) $('more-panel').hidden = $('more-panel').hidden;
  closeSubmenus();
}

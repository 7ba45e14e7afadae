/** The top bar's breadcrumb: where the user is (Projects › project name). */

import { h } from './dom.js';

export function setCrumbs(items) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(
    h(
      'ol',
      {},
      items.map((item, index) =>
        h(
          'li',
          {},
          index === items.length - 1
            ? h('span', { 'aria-current': 'page' }, item.label)
            : h('a', { href: item.href }, item.label),
        ),
      ),
    ),
  );
}

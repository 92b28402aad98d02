import { h, uid } from './dom';
import { formatAge, formatTime, formatUtc, t } from './i18n';
import type { InLogResult } from './inlog';
import type { FeedItem } from './store';
import { categoryName, codeWords, handlingOf, onwardWords, TLP_CLASS, tlpWords, urgencyName } from './words';

/**
 * The feed: an ARIA `feed` of `article`s (WAI-ARIA APG feed pattern), virtualised so that only
 * the rows in view exist in the DOM (10,000 alerts stay smooth). Each article is named by its
 * alert's title and carries aria-posinset / aria-setsize.
 */

export const ROW_HEIGHT = 148;
const OVERSCAN = 4;

export interface FeedCallbacks {
  acknowledge(item: FeedItem): void;
  open(item: FeedItem): void;
  stateName(code: string): string;
  regionName(code: string): string;
}

export class FeedView {
  readonly element: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly feed: HTMLElement;
  private readonly empty: HTMLElement;
  private items: FeedItem[] = [];
  private readonly rows = new Map<string, { el: HTMLElement; rev: number; lang: string; minute: number }>();
  private scheduled = false;
  private focusedKey: string | undefined;
  /** Set by the caller: when an item was first drawn (latency measurement for bench/console). */
  onDrawn?: (item: FeedItem) => void;

  constructor(private readonly cb: FeedCallbacks) {
    this.feed = h('div', { role: 'feed', 'aria-label': t('feed'), 'aria-busy': 'false', class: 'feed', 'aria-describedby': 'feed-help' });
    this.empty = h('p', { class: 'feed-empty' }, t('noAlerts'));
    this.scroller = h('div', { class: 'feed-scroller', onscroll: () => this.schedule() }, this.feed);
    this.element = h('div', { class: 'feed-wrap' }, this.empty, this.scroller);
    this.feed.addEventListener('keydown', (ev) => this.onKey(ev));
    this.feed.addEventListener('focusin', (ev) => {
      const art = (ev.target as HTMLElement).closest('article');
      if (art) this.focusedKey = art.dataset.key;
    });
    window.addEventListener('resize', () => this.schedule());
  }

  /** New list (already filtered, newest first). Keeps the view steady when items arrive on top. */
  setItems(items: FeedItem[]): void {
    const prevTop = this.items[0];
    const oldFirstVisible = Math.floor(this.scroller.scrollTop / ROW_HEIGHT);
    const anchor = this.items[oldFirstVisible];
    this.items = items;
    if (this.scroller.scrollTop > 0 && anchor && prevTop !== items[0]) {
      const idx = items.indexOf(anchor);
      if (idx >= 0 && idx !== oldFirstVisible) this.scroller.scrollTop += (idx - oldFirstVisible) * ROW_HEIGHT;
    }
    this.schedule();
  }

  /** aria-busy while a batch (history after a reload) is being added. */
  setBusy(busy: boolean): void {
    this.feed.setAttribute('aria-busy', String(busy));
  }

  relabel(): void {
    this.feed.setAttribute('aria-label', t('feed'));
    this.empty.textContent = t('noAlerts');
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  render(): void {
    const n = this.items.length;
    this.empty.hidden = n > 0;
    this.feed.style.height = `${n * ROW_HEIGHT}px`;
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 800;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const minute = Math.floor(Date.now() / 60_000);
    const lang = document.documentElement.lang;
    const wanted: HTMLElement[] = [];
    const keep = new Set<string>();
    for (let i = first; i <= last; i++) {
      const item = this.items[i];
      let row = this.rows.get(item.key);
      if (!row || row.rev !== item.rev || row.lang !== lang || row.minute !== minute) {
        const el = this.article(item);
        if (row) {
          const hadFocus = row.el.contains(document.activeElement);
          row.el.replaceWith(el);
          if (hadFocus) el.focus({ preventScroll: true });
        } else {
          this.onDrawn?.(item);
        }
        row = { el, rev: item.rev, lang, minute };
        this.rows.set(item.key, row);
      }
      row.el.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      row.el.setAttribute('aria-posinset', String(i + 1));
      row.el.setAttribute('aria-setsize', String(n));
      keep.add(item.key);
      wanted.push(row.el);
    }
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) {
        row.el.remove();
        this.rows.delete(key);
      }
    }
    // DOM order follows the feed order, without moving the focused article.
    for (let j = 0; j < wanted.length; j++) {
      const at = this.feed.children[j];
      if (at !== wanted[j]) this.feed.insertBefore(wanted[j], at ?? null);
    }
  }

  private article(item: FeedItem): HTMLElement {
    const c = item.alert.content;
    const hd = handlingOf(c);
    const titleId = uid('title');
    const v = item.verify;
    const stateName = this.cb.stateName(c.issuer.state);
    const sig = !v
      ? h('span', { class: 'sig checking' }, t('sigChecking'))
      : v.outcome === 'verified'
        ? h('span', { class: 'sig verified', title: `kid ${v.kid ?? ''}` }, '✔ ', t('verified'))
        : h('span', { class: 'sig invalid', title: v.reason ? t(`sigReason_${v.reason}`) : '' }, '✖ ', t('sigInvalid'));
    const classes = [
      item.inLog?.state === 'not-included' ? 'not-in-log' : '',
      'alert',
      `urgency-${c.urgency}`,
      item.revoked ? 'revoked' : '',
      item.superseded ? 'superseded' : '',
    ].join(' ');
    const el = h(
      'article',
      { class: classes, tabindex: 0, 'aria-labelledby': titleId, 'data-key': item.key, 'data-urgency': c.urgency },
      h('div', { class: `tlp-banner ${TLP_CLASS[hd.tlp] ?? ''}` }, h('strong', {}, hd.tlp), ' ', tlpWords(hd.tlp)),
      h(
        'div',
        { class: 'line1' },
        h('span', { class: `urgency-badge u-${c.urgency}` }, urgencyName(c.urgency)),
        h('h3', { id: titleId, class: 'alert-title' }, c.title),
        item.revoked ? h('span', { class: 'badge revoked-badge' }, t('revoked')) : null,
        !item.revoked && c.modified > c.created ? h('span', { class: 'badge' }, t('corrected')) : null,
        sig,
        inLogBadge(item.inLog),
      ),
      h(
        'div',
        { class: 'line2' },
        h('span', {}, this.cb.regionName(c.region)),
        ' · ',
        h('span', {}, t('issuedBy', { state: `${stateName} (${c.issuer.state})`, agency: c.issuer.agency })),
        ' · ',
        h('span', {}, categoryName(c.category)),
        ' · ',
        h('time', { datetime: item.alert.received_at, title: formatUtc(item.alert.received_at) }, formatTime(item.alert.received_at)),
        ' ',
        h('span', { class: 'age' }, `(${formatAge(item.alert.received_at, Date.now())})`),
      ),
      h('div', { class: 'line3' }, hd.codes.map(codeWords).join(' · '), ' · ', onwardWords(hd, c)),
      h(
        'div',
        { class: 'actions' },
        item.acked
          ? h('button', { type: 'button', class: 'ack done', disabled: true }, t('acknowledged'))
          : h('button', { type: 'button', class: 'ack', onclick: () => this.cb.acknowledge(item) }, t('acknowledge')),
        h('button', { type: 'button', onclick: () => this.cb.open(item) }, t('details')),
      ),
    );
    return el;
  }

  private focusIndex(i: number): void {
    const n = this.items.length;
    if (n === 0) return;
    const idx = Math.max(0, Math.min(n - 1, i));
    const item = this.items[idx];
    const top = idx * ROW_HEIGHT;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + ROW_HEIGHT > this.scroller.scrollTop + this.scroller.clientHeight) this.scroller.scrollTop = top + ROW_HEIGHT - this.scroller.clientHeight;
    this.render();
    this.rows.get(item.key)?.el.focus();
  }

  private onKey(ev: KeyboardEvent): void {
    const art = (ev.target as HTMLElement).closest('article');
    if (!art) return;
    const idx = this.items.findIndex((i) => i.key === art.dataset.key);
    if (idx < 0) return;
    const onArticle = ev.target === art;
    switch (ev.key) {
      case 'PageDown':
      case 'ArrowDown':
      case 'j':
        if (!onArticle && ev.key !== 'PageDown') return;
        ev.preventDefault();
        this.focusIndex(idx + 1);
        break;
      case 'PageUp':
      case 'ArrowUp':
      case 'k':
        if (!onArticle && ev.key !== 'PageUp') return;
        ev.preventDefault();
        this.focusIndex(idx - 1);
        break;
      case 'Home':
        if (ev.ctrlKey) {
          ev.preventDefault();
          this.focusIndex(0);
        }
        break;
      case 'End':
        if (ev.ctrlKey) {
          ev.preventDefault();
          this.focusIndex(this.items.length - 1);
        }
        break;
      case 'Enter':
        if (onArticle) {
          ev.preventDefault();
          this.cb.open(this.items[idx]);
        }
        break;
      case 'a':
      case 'A':
        if (onArticle && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
          ev.preventDefault();
          this.cb.acknowledge(this.items[idx]);
        }
        break;
    }
  }

  focusedItemKey(): string | undefined {
    return this.focusedKey;
  }
}

/** "In log" / "Pending" / "Not in log" beside "Verified", named for assistive technology by its full meaning. */
export function inLogBadge(r: InLogResult | undefined): HTMLElement | null {
  if (!r) return null;
  const [cls, mark, word, label] =
    r.state === 'included'
      ? ['included', '✔ ', t('inLog'), t('inLog_label')]
      : r.state === 'pending'
        ? ['pending', '… ', t('logPending'), t('logPending_label')]
        : ['not-included', '✖ ', t('notInLog'), t('notInLog_label')];
  return h('span', { class: `inlog ${cls}`, role: 'img', 'aria-label': label, title: label }, h('span', { 'aria-hidden': 'true' }, mark), word);
}

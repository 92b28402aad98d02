import type { DeliveredAlert, Token } from '../../src/domain/types';
import type { GapFrame } from '../../src/ws/frames';
import type { TrustStoreJson } from '../../src/domain/trust-store';
import { ApiError, getJson, query } from './api';
import { DetailsDialog } from './details';
import { field, h, replace } from './dom';
import { FeedView } from './feed';
import { formatTime, formatUtc, LANG_NAMES, LANGS, lang, pickLang, setLang, t, tk, type Lang, type MessageKey } from './i18n';
import { OpsViews } from './ops';
import { clearSession, deskKey, loadSession, saveSession, type Session } from './session';
import { signInView } from './signin';
import { FeedStore, type FeedItem } from './store';
import { DeskStream, type StreamStatus } from './stream';
import { LogChecker } from './inlog';
import { Verifier, type VerifyResult } from './verify';
import { categoryName, urgencyName } from './words';

/**
 * The console: sign-in, the live watch of every region the token may see, and for ops tokens the
 * replay, export and audit views. One page, no request to any other origin.
 */

interface RegionInfo {
  code: string;
  name: string;
  states: string[];
  epoch: string | null;
  seq: number;
}

const CATEGORIES = ['seizure', 'suspected-consignment', 'vehicle-of-interest', 'person-of-interest', 'route-change', 'precursor-diversion', 'other'];
const URGENCIES = ['flash', 'urgent', 'routine'];
/** Alerts shown again from history after a reload, per region. */
const HISTORY_PER_REGION = 100;
const EXPIRY_WARNING_MS = 5 * 60_000;
const MAX_FLASH_BANNERS = 3;

type View = 'watch' | 'replay' | 'audit';

function langPicker(onChange: () => void): HTMLElement {
  const select = h(
    'select',
    {
      id: 'lang',
      onchange: (ev: Event) => {
        const v = (ev.target as HTMLSelectElement).value as Lang;
        localStorage.setItem('cordon.lang', v);
        setLang(v);
        onChange();
      },
    },
    LANGS.map((l) => h('option', { value: l, selected: l === lang(), lang: l }, LANG_NAMES[l])),
  );
  return h('div', { class: 'lang-picker' }, h('label', { for: 'lang' }, t('language')), select);
}

class ConsoleApp {
  private readonly root: HTMLElement;
  private readonly store: FeedStore;
  private readonly feed: FeedView;
  private readonly details: DetailsDialog;
  private readonly ops: OpsViews;
  private stream: DeskStream | undefined;
  private verifier: Verifier | undefined;
  private logChecker: LogChecker | undefined;
  private regions: RegionInfo[] = [];
  private watched = new Set<string>();
  private status: StreamStatus = 'connecting';
  private view: View = 'watch';
  private filters = { urgency: '', category: '', state: '', text: '' };
  private readonly banners: HTMLElement;
  private readonly flashes: HTMLElement;
  private readonly expiryBox: HTMLElement;
  private statusEl: HTMLElement | undefined;
  private countEl: HTMLElement | undefined;
  private timers: number[] = [];
  private muted = localStorage.getItem('cordon.muted') === '1';
  private audio: AudioContext | undefined;
  private ended = false;

  constructor(
    private readonly session: Session,
    private readonly onSignOut: (message: string) => void,
  ) {
    const c = session.claims;
    this.root = document.getElementById('app') as HTMLElement;
    this.store = new FeedStore(localStorage, deskKey(c, 'positions'), deskKey(c, 'acks'));
    this.banners = h('div', { class: 'banners' });
    this.flashes = h('div', { class: 'flashes' });
    this.expiryBox = h('div', { class: 'expiry' });
    this.feed = new FeedView({
      acknowledge: (item) => this.acknowledge(item),
      open: (item) => this.openDetails(item.alert, item.verify, item.revoked, item.inLog),
      stateName: (s) => this.stateName(s),
      regionName: (r) => this.regionName(r),
    });
    this.details = new DetailsDialog({
      stateName: (s) => this.stateName(s),
      regionName: (r) => this.regionName(r),
      versions: async (id) => {
        const purpose = c.role === 'ops' ? this.ops.purposeOrDefault() : undefined;
        const r = await getJson<{ items: DeliveredAlert[] }>(`/v1/alerts/${encodeURIComponent(id)}${query({ versions: 'all', purpose })}`, {
          token: session.token,
        });
        return r.items;
      },
      verify: (a) => this.verifyAlert(a),
    });
    this.ops = new OpsViews({
      token: session.token,
      regions: () => this.regions,
      regionName: (r) => this.regionName(r),
      stateName: (s) => this.stateName(s),
      verify: (a) => this.verifyAlert(a),
      open: (a, v) => this.openDetails(a, v, a.content.revoked === true),
    });
    // Metrics for bench/console: when each alert was first drawn.
    const w = window as unknown as { cordonConsole?: { drawn: Map<string, number> } };
    if (localStorage.getItem('cordon.bench') === '1') {
      w.cordonConsole = { drawn: new Map() };
      this.feed.onDrawn = (item) => w.cordonConsole?.drawn.set(item.alert.content.id, performance.now());
    }
  }

  async start(): Promise<void> {
    this.renderShell();
    this.scheduleExpiry();
    const token = this.session.token;
    let trust: TrustStoreJson;
    try {
      [trust, { regions: this.regions }] = await Promise.all([
        getJson<TrustStoreJson>('/v1/trust'),
        getJson<{ regions: RegionInfo[] }>('/v1/regions', { token }),
      ]);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return this.end(t('tokenRejected', { reason: err.message }));
      this.setStatus('reconnecting');
      this.timers.push(window.setTimeout(() => void this.start(), 3000));
      return;
    }
    this.verifier = new Verifier(trust);
    this.trustFetchedAt = Date.now();
    // The transparency log's key (absent when the node runs without the log).
    const vkey = (trust as { log?: { vkey?: unknown } }).log?.vkey;
    if (typeof vkey === 'string' && !this.logChecker) this.logChecker = new LogChecker(token, vkey);
    this.watched = new Set(this.regions.map((r) => r.code));
    this.renderShell();
    // The live stream is for desk tokens (contract §9); ops replay and export instead.
    if (this.session.claims.role !== 'desk') return;
    await this.restoreHistory(token);
    this.stream = new DeskStream(token, {
      positions: () => this.store.allPositions(),
      onAlert: (a) => this.onAlert(a),
      onGap: (g) => this.onGap(g),
      onSubscribed: (f) => {
        // First subscription of a region: the position starts where the log stands now.
        if (!this.store.position(f.region) && f.epoch) this.store.setPosition(f.region, { seq: f.seq, epoch: f.epoch });
      },
      onStatus: (s) => this.setStatus(s),
      onServerError: (code, message) => {
        const key = code === 'STREAM_ACK_UNKNOWN' || code === 'LOG_UNAVAILABLE' ? 'ackFailed' : 'streamError';
        this.banner(t(key, { reason: message }), 'error');
      },
      onFinal: (code, reason) =>
        // The node closes with 4501 when the token expires: say so in the desk's words.
        this.end(this.session.claims.exp * 1000 <= Date.now() + 2000 ? t('tokenExpired') : t('sessionEnded', { code, reason: reason || '—' })),
      onRepeatedFailure: () => void this.checkToken(),
    });
    this.stream.start([...this.watched]);
  }

  /** After a reload: the alerts up to the saved position come back from history, then live from there. */
  private async restoreHistory(token: string): Promise<void> {
    this.feed.setBusy(true);
    await Promise.all(
      this.regions.map(async (r) => {
        const pos = this.store.position(r.code);
        if (!pos) {
          // First time on this desk: the recent history of the region, then live from its top.
          if (r.epoch && r.seq > 0) this.store.setPosition(r.code, { seq: r.seq, epoch: r.epoch });
          else return;
        } else if (pos.epoch !== r.epoch) {
          return; // the stream reports the epoch change as a gap
        }
        const upTo = this.store.position(r.code)!.seq;
        let after = Math.max(0, upTo - HISTORY_PER_REGION);
        try {
          for (let guard = 0; guard < 20 && after < upTo; guard++) {
            const page = await getJson<{ items: DeliveredAlert[]; next: number | null }>(
              `/v1/regions/${encodeURIComponent(r.code)}/alerts${query({ after, limit: Math.min(1000, upTo - after) })}`,
              { token },
            ).catch((err: unknown) => {
              const earliest = err instanceof ApiError ? err.body?.earliest : undefined;
              if (err instanceof ApiError && err.status === 410 && typeof earliest === 'number' && earliest - 1 > after) {
                after = earliest - 1;
                return { items: [], next: after };
              }
              throw err;
            });
            for (const a of page.items) if (a.seq <= upTo) this.addItem(this.store.restore(a));
            if (page.next === null || page.next === undefined || page.next <= after) break;
            after = page.next;
          }
        } catch {
          /* history is a convenience; the stream is what must not lose anything */
        }
      }),
    );
    this.feed.setBusy(false);
    this.refreshFeed();
  }

  private addItem(item: FeedItem | undefined): void {
    if (!item) return;
    void this.verifyAlert(item.alert).then((v) => {
      this.store.setVerified(item, v);
      this.feed.schedule();
    });
    this.logChecker?.watch(item.alert, (r) => {
      this.store.setInLog(item, r);
      this.feed.schedule();
      if (this.details.dialog.open && this.details.showing(item.alert))
        this.details.open({ alert: item.alert, verify: item.verify, revoked: item.revoked, inLog: r });
    });
  }

  private trustFetchedAt = 0;

  private async verifyAlert(a: DeliveredAlert): Promise<VerifyResult> {
    if (!this.verifier) return { outcome: 'invalid', reason: 'unknownKey' };
    const r = await this.verifier.verify(a);
    // A key this page has not seen may have been added since (trust-store reload): look again, at most once a minute.
    if (r.reason === 'unknownKey' && Date.now() - this.trustFetchedAt > 60_000) {
      this.trustFetchedAt = Date.now();
      try {
        this.verifier = new Verifier(await getJson<TrustStoreJson>('/v1/trust'));
        return await this.verifier.verify(a);
      } catch {
        return r;
      }
    }
    return r;
  }

  private onAlert(a: DeliveredAlert): void {
    const item = this.store.receive(a);
    if (!item) return;
    this.addItem(item);
    this.queueRefresh();
    if (a.content.urgency === 'flash' && this.watched.has(a.region)) this.flash(item);
  }

  private flash(item: FeedItem): void {
    const title = item.alert.content.title;
    const box = h(
      'div',
      { class: 'flash-banner', role: 'alert' },
      h('strong', {}, t('flashAnnounce', { title })),
      ' ',
      h('button', { type: 'button', onclick: () => this.openDetails(item.alert, item.verify, item.revoked, item.inLog) }, t('details')),
      h('button', { type: 'button', onclick: () => box.remove() }, t('dismiss')),
    );
    this.flashes.prepend(box);
    while (this.flashes.children.length > MAX_FLASH_BANNERS) this.flashes.lastElementChild?.remove();
    this.beep();
    if ('Notification' in window && Notification.permission === 'granted') {
      try {
        new Notification(t('flashAnnounce', { title }), {
          body: `${this.regionName(item.alert.region)} — ${this.stateName(item.alert.content.issuer.state)}`,
          tag: item.key,
        });
      } catch {
        /* some platforms only allow notifications from a service worker */
      }
    }
  }

  private beep(): void {
    if (this.muted) return;
    try {
      this.audio ??= new AudioContext();
      const ctx = this.audio;
      void ctx.resume();
      for (let i = 0; i < 3; i++) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = 'square';
        osc.frequency.value = i % 2 ? 660 : 880;
        gain.gain.value = 0.08;
        osc.connect(gain).connect(ctx.destination);
        const at = ctx.currentTime + i * 0.22;
        osc.start(at);
        osc.stop(at + 0.18);
      }
    } catch {
      /* no audio device */
    }
  }

  private onGap(g: GapFrame): void {
    const reason = tk(`gap_${g.reason}`, g.reason, { epoch: g.epoch ?? '—' });
    const text =
      g.to >= g.from && g.from > 0
        ? t('gapWarning', { from: g.from, to: g.to, region: this.regionName(g.region), reason })
        : t('gapWarningNoRange', { region: this.regionName(g.region), reason });
    this.banner(text, 'gap');
    // Delivery continues at the oldest alert held: the saved position moves past the gap.
    if (g.epoch) this.store.setPosition(g.region, { seq: Math.max(0, g.to), epoch: g.epoch });
  }

  private banner(text: string, kind: 'gap' | 'error'): void {
    const box = h(
      'div',
      { class: `banner banner-${kind}`, role: 'alert' },
      h('span', {}, text),
      ' ',
      h('button', { type: 'button', onclick: () => box.remove() }, t('dismiss')),
    );
    this.banners.append(box);
  }

  private acknowledge(item: FeedItem): void {
    if (item.acked) return;
    if (this.stream?.ack(item.alert.region, item.alert.seq)) {
      this.store.markAcked(item);
      this.feed.schedule();
    } else {
      this.banner(t('ackFailed', { reason: t('status_reconnecting') }), 'error');
    }
  }

  private openDetails(alert: DeliveredAlert, verify: FeedItem['verify'], revoked: boolean, inLog?: FeedItem['inLog']): void {
    this.details.open({ alert, verify, revoked, inLog });
    if (!verify) void this.verifyAlert(alert).then((v) => this.details.open({ alert, verify: v, revoked, inLog }));
  }

  private async checkToken(): Promise<void> {
    try {
      await getJson('/v1/regions', { token: this.session.token });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.end(t('tokenRejected', { reason: err.message }));
    }
  }

  private scheduleExpiry(): void {
    const expMs = this.session.claims.exp * 1000;
    const now = Date.now();
    const warnIn = expMs - EXPIRY_WARNING_MS - now;
    const warn = () =>
      replace(
        this.expiryBox,
        h('div', { class: 'banner banner-expiry', role: 'alert' }, t('expiryWarning', { time: formatTime(new Date(expMs).toISOString()) })),
      );
    if (warnIn <= 0) warn();
    else this.timers.push(window.setTimeout(warn, Math.min(warnIn, 2 ** 31 - 1)));
    this.timers.push(window.setTimeout(() => this.end(t('tokenExpired')), Math.min(Math.max(0, expMs - now), 2 ** 31 - 1)));
  }

  private end(message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stream?.stop();
    this.logChecker?.stop();
    for (const id of this.timers) clearTimeout(id);
    if (this.details.dialog.open) this.details.dialog.close();
    this.onSignOut(message);
  }

  signOut(): void {
    this.end('');
  }

  private setStatus(s: StreamStatus): void {
    this.status = s;
    if (this.statusEl) {
      this.statusEl.textContent = t(`status_${s}` as MessageKey);
      this.statusEl.dataset.state = s;
    }
  }

  stateName(code: string): string {
    return this.verifier?.stateNames.get(code) ?? code;
  }

  regionName(code: string): string {
    const r = this.regions.find((x) => x.code === code);
    return r ? `${r.name} (${code})` : code;
  }

  private matches(item: FeedItem): boolean {
    const c = item.alert.content;
    const f = this.filters;
    if (!this.watched.has(item.alert.region)) return false;
    if (f.urgency && c.urgency !== f.urgency) return false;
    if (f.category && c.category !== f.category) return false;
    if (f.state && c.issuer.state !== f.state) return false;
    if (f.text) {
      const needle = f.text.toLocaleLowerCase();
      const hay = `${c.title}\n${typeof c.description === 'string' ? c.description : ''}\n${c.issuer.agency}\n${c.region}`.toLocaleLowerCase();
      if (!hay.includes(needle)) return false;
    }
    return true;
  }

  private refreshQueued = false;

  /** Coalesced to one refresh a frame, however many alerts arrive in it. */
  private queueRefresh(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    requestAnimationFrame(() => {
      this.refreshQueued = false;
      this.refreshFeed();
    });
  }

  private refreshFeed(): void {
    const f = this.filters;
    const unfiltered = !f.urgency && !f.category && !f.state && !f.text && this.watched.size === this.regions.length;
    const shown = unfiltered ? this.store.items.slice() : this.store.items.filter((i) => this.matches(i));
    this.feed.setItems(shown);
    if (this.countEl) this.countEl.textContent = t('feedCount', { shown: shown.length, total: this.store.items.length });
  }

  private setWatched(code: string, on: boolean): void {
    if (on === this.watched.has(code)) return;
    if (on) {
      this.watched.add(code);
      this.stream?.subscribe([code]);
    } else {
      this.watched.delete(code);
      this.stream?.unsubscribe([code]);
    }
    this.refreshFeed();
  }

  /** The whole page for the current language and view; the feed and the dialog are kept. */
  renderShell(): void {
    const c: Token = this.session.claims;
    this.statusEl = h('div', { role: 'status', class: 'conn', 'aria-live': 'polite', hidden: c.role !== 'desk' });
    this.setStatus(this.status);
    const muteBtn = h(
      'button',
      {
        type: 'button',
        'aria-pressed': String(this.muted),
        onclick: () => {
          this.muted = !this.muted;
          localStorage.setItem('cordon.muted', this.muted ? '1' : '0');
          muteBtn.setAttribute('aria-pressed', String(this.muted));
        },
      },
      t('mute'),
    );
    const notifyBtn =
      'Notification' in window && c.role === 'desk'
        ? h(
            'button',
            {
              type: 'button',
              'aria-pressed': String(Notification.permission === 'granted'),
              onclick: () => void Notification.requestPermission().then((p) => notifyBtn?.setAttribute('aria-pressed', String(p === 'granted'))),
            },
            t('notifications'),
          )
        : null;
    const expIso = new Date(c.exp * 1000).toISOString();
    const header = h(
      'header',
      { class: 'top' },
      h('h1', {}, t('appTitle')),
      h(
        'dl',
        { class: 'who', 'aria-label': t('who') },
        h('dt', {}, t('state')),
        h('dd', {}, `${this.stateName(c.iss)} (${c.iss})`),
        h('dt', {}, t('desk')),
        h('dd', {}, c.sub),
        h('dt', {}, t('role')),
        h('dd', {}, t(c.role === 'ops' ? 'role_ops' : 'role_desk')),
        h('dt', {}, t('clearance')),
        h('dd', {}, tk(`clearance_${c.clearance}`, c.clearance)),
        h('dt', {}, t('expires')),
        h('dd', {}, h('time', { datetime: expIso, title: formatUtc(expIso) }, formatTime(expIso))),
      ),
      this.statusEl,
      h(
        'div',
        { class: 'tools' },
        langPicker(() => this.relabel()),
        c.role === 'desk' ? muteBtn : null,
        notifyBtn,
        h('button', { type: 'button', onclick: () => this.signOut() }, t('signOut')),
      ),
    );
    const views: View[] = c.role === 'ops' ? ['replay', 'audit'] : ['watch'];
    if (!views.includes(this.view)) this.view = views[0];
    const nav = h(
      'nav',
      { 'aria-label': t('nav'), class: 'views' },
      views.map((v) =>
        h(
          'button',
          {
            type: 'button',
            'aria-current': v === this.view ? 'page' : undefined,
            onclick: () => {
              this.view = v;
              this.renderShell();
            },
          },
          t(`nav_${v}` as MessageKey),
        ),
      ),
    );
    let main: HTMLElement;
    if (this.view === 'replay') main = h('main', { id: 'main' }, this.ops.replayView());
    else if (this.view === 'audit') main = h('main', { id: 'main' }, this.ops.auditView());
    else main = h('main', { id: 'main', class: 'watch' }, this.filterPanel(), this.feedColumn());
    replace(this.root, header, this.expiryBox, this.banners, this.flashes, nav, main, this.details.dialog);
    document.title = t('appTitle');
    this.refreshFeed();
  }

  private relabel(): void {
    this.feed.relabel();
    this.renderShell();
    this.details.redraw();
    const expMs = this.session.claims.exp * 1000;
    if (this.expiryBox.firstChild)
      replace(
        this.expiryBox,
        h('div', { class: 'banner banner-expiry', role: 'alert' }, t('expiryWarning', { time: formatTime(new Date(expMs).toISOString()) })),
      );
  }

  private filterPanel(): HTMLElement {
    const states = [...new Set(this.regions.flatMap((r) => r.states))].sort();
    const select = (id: string, label: string, key: keyof ConsoleApp['filters'], options: Array<[string, string]>) =>
      field(
        id,
        label,
        h(
          'select',
          {
            id,
            onchange: (ev: Event) => {
              this.filters[key] = (ev.target as HTMLSelectElement).value;
              this.refreshFeed();
            },
          },
          h('option', { value: '' }, t('any')),
          options.map(([v, text]) => h('option', { value: v, selected: this.filters[key] === v }, text)),
        ),
      );
    return h(
      'aside',
      { class: 'filters', 'aria-label': t('filters') },
      h(
        'fieldset',
        {},
        h('legend', {}, t('regions')),
        this.regions.map((r) =>
          h(
            'div',
            { class: 'check' },
            h('input', {
              type: 'checkbox',
              id: `region-${r.code}`,
              checked: this.watched.has(r.code),
              onchange: (ev: Event) => this.setWatched(r.code, (ev.target as HTMLInputElement).checked),
            }),
            h('label', { for: `region-${r.code}` }, `${r.name} (${r.code})`),
          ),
        ),
      ),
      h('h2', {}, t('filters')),
      select(
        'f-urgency',
        t('urgency'),
        'urgency',
        URGENCIES.map((u) => [u, urgencyName(u)]),
      ),
      select(
        'f-category',
        t('category'),
        'category',
        CATEGORIES.map((x) => [x, categoryName(x)]),
      ),
      select(
        'f-state',
        t('issuingState'),
        'state',
        states.map((s) => [s, `${this.stateName(s)} (${s})`]),
      ),
      field(
        'f-text',
        t('search'),
        h('input', {
          id: 'f-text',
          type: 'search',
          value: this.filters.text,
          oninput: (ev: Event) => {
            this.filters.text = (ev.target as HTMLInputElement).value;
            this.refreshFeed();
          },
        }),
      ),
    );
  }

  private feedColumn(): HTMLElement {
    this.countEl = h('p', { class: 'count' });
    return h(
      'section',
      { class: 'feed-col', 'aria-label': t('feed') },
      this.countEl,
      h('p', { id: 'feed-help', class: 'muted' }, t('shortcuts')),
      this.feed.element,
    );
  }
}

function boot(): void {
  setLang(pickLang(localStorage.getItem('cordon.lang'), navigator.languages ?? [navigator.language]));
  const root = document.getElementById('app') as HTMLElement;
  let app: ConsoleApp | undefined;

  const showSignIn = (message?: string): void => {
    const render = (): void => {
      replace(root, signInView({ message, langPicker: langPicker(render), onSignedIn: signedIn }));
      document.title = t('appTitle');
    };
    render();
  };
  const signedIn = (s: Session): void => {
    saveSession(s);
    app = new ConsoleApp(s, (message) => {
      clearSession();
      app = undefined;
      showSignIn(message);
    });
    void app.start();
  };
  const s = loadSession();
  if (s) signedIn(s);
  else showSignIn();
  void app;
}

boot();

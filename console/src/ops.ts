import type { DeliveredAlert } from '../../src/domain/types';
import { ApiError, getJson, query, request } from './api';
import { field, h, replace } from './dom';
import { formatNumber, formatTime, formatUtc, t, tk } from './i18n';
import type { VerifyResult } from './verify';
import { categoryName, handlingOf, TLP_CLASS, urgencyName } from './words';

/**
 * Ops views (ops token): Replay (a region's history by number or time, a purpose required, paged,
 * any alert opens), Export (NDJSON download with progress, cancellable) and the Audit trail.
 */

export interface OpsDeps {
  token: string;
  regions(): Array<{ code: string; name: string; seq: number }>;
  regionName(code: string): string;
  stateName(code: string): string;
  verify(a: DeliveredAlert): Promise<VerifyResult>;
  open(a: DeliveredAlert, v?: VerifyResult): void;
}

interface ReplayPage {
  region: string;
  epoch: string | null;
  items: DeliveredAlert[];
  next: number | null;
  earliest: number;
  latest: number;
}

interface AuditRecord {
  n: number;
  at: string;
  kind: string;
  actor: string;
  [k: string]: unknown;
}

const PAGE = 25;

export class OpsViews {
  private form = { region: '', by: 'seq' as 'seq' | 'time', fromSeq: '0', fromTime: '', toSeq: '', purpose: '' };
  private replayAfters: number[] = [];
  private replayState: { page?: ReplayPage; error?: string; after?: number } = {};
  private exportCtl: AbortController | undefined;
  private exportMsg = '';
  private audit = { kind: '', actor: '', afters: [] as number[], items: [] as AuditRecord[], next: null as number | null, error: '', after: 0, loaded: false };
  private replayBox: HTMLElement | undefined;
  private exportBox: HTMLElement | undefined;
  private auditBox: HTMLElement | undefined;

  constructor(private readonly deps: OpsDeps) {}

  purposeOrDefault(): string {
    return this.form.purpose.trim() || 'console: alert details';
  }

  // ---- Replay and export ---------------------------------------------------------------------

  replayView(): HTMLElement {
    const regions = this.deps.regions();
    if (!this.form.region && regions[0]) this.form.region = regions[0].code;
    const set = (k: keyof OpsViews['form']) => (ev: Event) => {
      (this.form as Record<string, string>)[k] = (ev.target as HTMLInputElement).value;
    };
    const byRadio = (v: 'seq' | 'time', label: string) =>
      h(
        'label',
        { class: 'radio' },
        h('input', {
          type: 'radio',
          name: 'by',
          value: v,
          checked: this.form.by === v,
          onchange: () => {
            this.form.by = v;
          },
        }),
        ' ',
        label,
      );
    this.replayBox = h('div', { class: 'replay-results' });
    this.exportBox = h('div', { class: 'export-status' });
    const form = h(
      'form',
      {
        class: 'ops-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          this.replayAfters = [];
          void this.loadReplay(this.startAfter());
        },
      },
      field(
        'r-region',
        t('region'),
        h(
          'select',
          { id: 'r-region', onchange: set('region') },
          regions.map((r) => h('option', { value: r.code, selected: r.code === this.form.region }, `${r.name} (${r.code})`)),
        ),
      ),
      h('fieldset', {}, h('legend', {}, t('fromBy')), byRadio('seq', t('bySeq')), byRadio('time', t('byTime'))),
      field('r-from-seq', t('fromSeq'), h('input', { id: 'r-from-seq', type: 'number', min: 0, value: this.form.fromSeq, oninput: set('fromSeq') })),
      field(
        'r-from-time',
        t('fromTime'),
        h('input', { id: 'r-from-time', type: 'datetime-local', step: 1, value: this.form.fromTime, oninput: set('fromTime') }),
      ),
      field('r-to-seq', t('toSeq'), h('input', { id: 'r-to-seq', type: 'number', min: 1, value: this.form.toSeq, oninput: set('toSeq') })),
      field(
        'r-purpose',
        t('purpose'),
        h('input', {
          id: 'r-purpose',
          type: 'text',
          'aria-required': 'true',
          maxlength: 512,
          value: this.form.purpose,
          'aria-describedby': 'r-purpose-help',
          oninput: set('purpose'),
        }),
        { wide: true, help: t('purposeHelp') },
      ),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'submit', class: 'primary' }, t('show')),
        h('button', { type: 'button', onclick: () => void this.export() }, t('export')),
      ),
    );
    this.drawReplay();
    this.drawExport();
    return h(
      'section',
      { class: 'ops', 'aria-labelledby': 'replay-title' },
      h('h2', { id: 'replay-title' }, t('replayTitle')),
      form,
      this.exportBox,
      this.replayBox,
    );
  }

  private startAfter(): number {
    return Math.max(0, Number.parseInt(this.form.fromSeq || '0', 10) || 0);
  }

  private params(after: number | undefined): Record<string, string | number | undefined> {
    const p: Record<string, string | number | undefined> = { purpose: this.form.purpose.trim() };
    if (this.form.by === 'time' && after === undefined && this.form.fromTime) p.since = new Date(this.form.fromTime).toISOString();
    else p.after = after ?? this.startAfter();
    return p;
  }

  private toSeq(): number | undefined {
    const n = Number.parseInt(this.form.toSeq, 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }

  private async loadReplay(after: number | undefined): Promise<void> {
    if (!this.form.purpose.trim()) {
      this.replayState = { error: t('purposeRequired') };
      this.drawReplay();
      return;
    }
    const first = this.replayAfters.length === 0 && this.form.by === 'time';
    try {
      const page = await getJson<ReplayPage>(
        `/v1/regions/${encodeURIComponent(this.form.region)}/alerts${query({ ...this.params(first ? undefined : after), limit: PAGE })}`,
        { token: this.deps.token },
      );
      const to = this.toSeq();
      if (to !== undefined) {
        page.items = page.items.filter((a) => a.seq <= to);
        if (page.next !== null && page.next >= to) page.next = null;
      }
      this.replayState = { page, after };
    } catch (err) {
      this.replayState = { error: t('replayFailed', { reason: (err as Error).message }) };
    }
    this.drawReplay();
  }

  private drawReplay(): void {
    const box = this.replayBox;
    if (!box) return;
    const { page, error } = this.replayState;
    if (error) return replace(box, h('p', { class: 'error', role: 'alert' }, error));
    if (!page) return replace(box);
    if (page.items.length === 0) return replace(box, h('p', {}, t('replayEmpty')));
    const rows = page.items.map((a) => {
      const c = a.content;
      const sig = h('td', {}, '…');
      void this.deps.verify(a).then((v) => replace(sig, v.outcome === 'verified' ? t('verified') : t('sigInvalid')));
      const tlp = handlingOf(c).tlp;
      return h(
        'tr',
        {},
        h('td', {}, String(a.seq)),
        h('td', {}, h('time', { datetime: a.received_at, title: formatUtc(a.received_at) }, formatTime(a.received_at))),
        h('td', {}, urgencyName(c.urgency)),
        h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => void this.deps.verify(a).then((v) => this.deps.open(a, v)) }, c.title)),
        h('td', {}, `${this.deps.stateName(c.issuer.state)} (${c.issuer.state})`),
        h('td', {}, categoryName(c.category)),
        h('td', {}, h('span', { class: `tlp-chip ${TLP_CLASS[tlp] ?? ''}` }, tlp)),
        sig,
      );
    });
    const prev = this.replayAfters.length > 0;
    replace(
      box,
      h(
        'table',
        { class: 'table' },
        h('caption', {}, this.deps.regionName(page.region)),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [t('colSeq'), t('colTime'), t('colUrgency'), t('colTitle'), t('colState'), t('colCategory'), t('colTlp'), t('colSignature')].map((x) =>
              h('th', { scope: 'col' }, x),
            ),
          ),
        ),
        h('tbody', {}, rows),
      ),
      h(
        'div',
        { class: 'pager' },
        h(
          'button',
          {
            type: 'button',
            disabled: !prev,
            onclick: () => {
              const back = this.replayAfters.pop();
              void this.loadReplay(back);
            },
          },
          t('prevPage'),
        ),
        h(
          'button',
          {
            type: 'button',
            disabled: page.next === null,
            onclick: () => {
              this.replayAfters.push(this.replayState.after ?? this.startAfter());
              void this.loadReplay(page.next ?? undefined);
            },
          },
          t('nextPage'),
        ),
      ),
    );
  }

  private drawExport(progress?: { n: number; total: number }): void {
    const box = this.exportBox;
    if (!box) return;
    if (progress) {
      replace(
        box,
        h('label', { for: 'export-progress' }, t('exportProgress', { n: formatNumber(progress.n) })),
        h('progress', { id: 'export-progress', max: Math.max(1, progress.total), value: Math.min(progress.n, Math.max(1, progress.total)) }),
        h('button', { type: 'button', onclick: () => this.exportCtl?.abort() }, t('cancel')),
      );
    } else {
      replace(box, this.exportMsg ? h('p', { role: 'status' }, this.exportMsg) : null);
    }
  }

  /** NDJSON of every visible alert from the start position to the top, saved as a file. */
  private async export(): Promise<void> {
    if (!this.form.purpose.trim()) {
      this.exportMsg = t('purposeRequired');
      this.drawExport();
      return;
    }
    if (this.exportCtl) return;
    const ctl = new AbortController();
    this.exportCtl = ctl;
    const region = this.form.region;
    const after = this.startAfter();
    const top = this.deps.regions().find((r) => r.code === region)?.seq ?? 0;
    const to = this.toSeq();
    const total = Math.max(1, (to ?? top) - after);
    const chunks: BlobPart[] = [];
    let n = 0;
    this.drawExport({ n, total });
    try {
      const res = await request(`/v1/regions/${encodeURIComponent(region)}/alerts${query(this.params(this.form.by === 'time' ? undefined : after))}`, {
        token: this.deps.token,
        accept: 'application/x-ndjson',
        signal: ctl.signal,
      });
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let rest = '';
      let lastDraw = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const text = rest + dec.decode(value, { stream: true });
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          if (!line.trim()) continue;
          if (to !== undefined) {
            const seq = (JSON.parse(line) as { seq: number }).seq;
            if (seq > to) continue;
          }
          chunks.push(line + '\n');
          n++;
        }
        if (performance.now() - lastDraw > 100) {
          lastDraw = performance.now();
          this.drawExport({ n, total });
        }
      }
      if (rest.trim()) {
        chunks.push(rest + '\n');
        n++;
      }
      const url = URL.createObjectURL(new Blob(chunks, { type: 'application/x-ndjson' }));
      const a = h('a', { href: url, download: `cordon-${region}-after-${after}.ndjson`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      this.exportMsg = t('exportDone', { n: formatNumber(n) });
    } catch (err) {
      this.exportMsg = ctl.signal.aborted ? t('exportCancelled') : t('exportFailed', { reason: (err as Error).message });
    } finally {
      this.exportCtl = undefined;
      this.drawExport();
    }
  }

  // ---- Audit ---------------------------------------------------------------------------------

  auditView(): HTMLElement {
    this.auditBox = h('div', { class: 'audit-results' });
    const kinds = ['published', 'rejected', 'security', 'ack', 'replayed'];
    const form = h(
      'form',
      {
        class: 'ops-form',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          this.audit.afters = [];
          void this.loadAudit(0);
        },
      },
      field(
        'a-kind',
        t('kind'),
        h(
          'select',
          {
            id: 'a-kind',
            onchange: (ev: Event) => {
              this.audit.kind = (ev.target as HTMLSelectElement).value;
              this.drawAudit();
            },
          },
          h('option', { value: '' }, t('any')),
          kinds.map((k) => h('option', { value: k, selected: this.audit.kind === k }, tk(`kind_${k}`, k))),
        ),
      ),
      field(
        'a-actor',
        t('actor'),
        h('input', {
          id: 'a-actor',
          type: 'search',
          value: this.audit.actor,
          oninput: (ev: Event) => {
            this.audit.actor = (ev.target as HTMLInputElement).value;
            this.drawAudit();
          },
        }),
      ),
      field(
        'a-purpose',
        t('purpose'),
        h('input', {
          id: 'a-purpose',
          type: 'text',
          'aria-required': 'true',
          maxlength: 512,
          value: this.form.purpose,
          'aria-describedby': 'a-purpose-help',
          oninput: (ev: Event) => {
            this.form.purpose = (ev.target as HTMLInputElement).value;
          },
        }),
        { wide: true, help: t('purposeHelp') },
      ),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('show'))),
    );
    this.drawAudit();
    return h('section', { class: 'ops', 'aria-labelledby': 'audit-title' }, h('h2', { id: 'audit-title' }, t('auditTitle')), form, this.auditBox);
  }

  private async loadAudit(after: number): Promise<void> {
    if (!this.form.purpose.trim()) {
      this.audit.error = t('purposeRequired');
      this.drawAudit();
      return;
    }
    try {
      const page = await getJson<{ items: AuditRecord[]; next: number | null }>(`/v1/audit${query({ after, limit: 100, purpose: this.form.purpose.trim() })}`, {
        token: this.deps.token,
      });
      Object.assign(this.audit, { items: page.items, next: page.next, error: '', after, loaded: true });
    } catch (err) {
      this.audit.error = t('replayFailed', { reason: err instanceof ApiError ? err.message : String(err) });
    }
    this.drawAudit();
  }

  private drawAudit(): void {
    const box = this.auditBox;
    if (!box) return;
    const a = this.audit;
    if (a.error) return replace(box, h('p', { class: 'error', role: 'alert' }, a.error));
    if (!a.loaded) return replace(box);
    const actor = a.actor.trim().toLowerCase();
    const shown = a.items.filter((r) => (!a.kind || r.kind === a.kind) && (!actor || String(r.actor).toLowerCase().includes(actor)));
    const rest = (r: AuditRecord): string => {
      const { n: _n, at: _at, kind: _k, actor: _a, ...others } = r;
      return Object.entries(others)
        .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v as string | number | boolean | undefined)}`)
        .join('; ');
    };
    replace(
      box,
      shown.length === 0
        ? h('p', {}, t('auditEmpty'))
        : h(
            'table',
            { class: 'table' },
            h('caption', {}, t('auditTitle')),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                [t('auditN'), t('auditAt'), t('kind'), t('actor'), t('auditRecord')].map((x) => h('th', { scope: 'col' }, x)),
              ),
            ),
            h(
              'tbody',
              {},
              shown.map((r) =>
                h(
                  'tr',
                  {},
                  h('td', {}, String(r.n)),
                  h('td', {}, h('time', { datetime: r.at, title: formatUtc(r.at) }, formatTime(r.at))),
                  h('td', {}, tk(`kind_${r.kind}`, r.kind)),
                  h('td', {}, String(r.actor)),
                  h('td', { class: 'record' }, rest(r)),
                ),
              ),
            ),
          ),
      h(
        'div',
        { class: 'pager' },
        h('button', { type: 'button', disabled: a.afters.length === 0, onclick: () => void this.loadAudit(a.afters.pop() ?? 0) }, t('prevPage')),
        h(
          'button',
          {
            type: 'button',
            disabled: a.next === null,
            onclick: () => {
              a.afters.push(a.after);
              void this.loadAudit(a.next ?? 0);
            },
          },
          t('nextPage'),
        ),
      ),
    );
  }
}

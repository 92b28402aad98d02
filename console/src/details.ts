import type { DeliveredAlert } from '../../src/domain/types';
import { h, replace, type Child } from './dom';
import { formatDate, formatTime, formatUtc, t, tk, type MessageKey } from './i18n';
import { inLogBadge } from './feed';
import type { InLogResult } from './inlog';
import type { VerifyResult } from './verify';
import {
  categoryName,
  codeWords,
  evidentialWords,
  gradingWords,
  handlingOf,
  onwardWords,
  schemeName,
  TLP_CLASS,
  tlpWords,
  urgencyName,
  type Grading,
} from './words';

/**
 * Everything an alert carries, in a modal dialog; "Print" gives a clean one-page record of it for
 * a case file (print styles hide the rest of the console).
 */

export interface DetailsSource {
  alert: DeliveredAlert;
  verify?: VerifyResult;
  revoked?: boolean;
  inLog?: InLogResult;
}

export interface DetailsDeps {
  stateName(code: string): string;
  regionName(code: string): string;
  /** GET /v1/alerts/{id}?versions=all */
  versions(id: string): Promise<DeliveredAlert[]>;
  verify(a: DeliveredAlert): Promise<VerifyResult>;
}

function section(title: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'detail-section' }, h('h3', {}, title), ...body);
}

function dl(rows: Array<[string, Child]>): HTMLElement {
  return h(
    'dl',
    {},
    rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

export function sigWords(v: VerifyResult | undefined, stateName: (s: string) => string): Child {
  if (!v) return t('sigChecking');
  const head =
    v.outcome === 'verified' ? h('strong', { class: 'sig verified' }, '✔ ', t('verified')) : h('strong', { class: 'sig invalid' }, '✖ ', t('sigInvalid'));
  const reason = v.reason ? ` — ${t(`sigReason_${v.reason}` as MessageKey)}` : '';
  const key = v.kid
    ? h(
        'div',
        { class: 'kid' },
        t('keyLine', {
          kid: v.kid,
          state: v.keyStateName ? stateName(v.keyStateName) : '?',
          keyState: v.keyState ? tk(`keyState_${v.keyState}`, v.keyState) : '?',
        }),
      )
    : null;
  return [head, reason, key];
}

export class DetailsDialog {
  readonly dialog: HTMLDialogElement;
  private readonly body: HTMLElement;
  private readonly heading: HTMLElement;
  private current: DetailsSource | undefined;

  constructor(private readonly deps: DetailsDeps) {
    this.heading = h('h2', { id: 'details-title' });
    this.body = h('div', { class: 'details-body' });
    this.dialog = h(
      'dialog',
      { class: 'details', 'aria-labelledby': 'details-title' },
      h(
        'div',
        { class: 'details-head' },
        this.heading,
        h(
          'div',
          { class: 'details-actions no-print' },
          h('button', { type: 'button', onclick: () => this.print() }, t('print')),
          h('button', { type: 'button', onclick: () => this.dialog.close() }, t('close')),
        ),
      ),
      this.body,
    );
    this.dialog.addEventListener('close', () => document.body.classList.remove('printing-details'));
  }

  open(src: DetailsSource): void {
    this.current = src;
    this.draw();
    if (!this.dialog.open) this.dialog.showModal();
    void this.loadVersions(src.alert);
  }

  /** Whether the dialog shows this alert. */
  showing(alert: DeliveredAlert): boolean {
    return this.current?.alert === alert;
  }

  redraw(): void {
    if (this.current && this.dialog.open) {
      this.draw();
      void this.loadVersions(this.current.alert);
    }
  }

  private print(): void {
    document.body.classList.add('printing-details');
    window.print();
  }

  private draw(): void {
    const src = this.current;
    if (!src) return;
    const a = src.alert;
    const c = a.content;
    const hd = handlingOf(c);
    const g = c.grading as Grading;
    const loc = c.location;
    const subjects = (c.subjects as Array<{ kind: string; value: string; subject_category: string; basis: string }> | undefined) ?? [];
    const related = (c.related as Array<{ ref: string; rel: string }> | undefined) ?? [];
    const refs = (c.external_refs as Array<{ system: string; ref: string }> | undefined) ?? [];
    const retention = c.retention as { review_by?: string; expires: string } | undefined;
    replace(this.heading, h('span', { class: src.revoked || c.revoked ? 'struck' : '' }, c.title));
    replace(
      this.body,
      h('div', { class: `tlp-banner ${TLP_CLASS[hd.tlp] ?? ''}` }, h('strong', {}, hd.tlp), ' ', tlpWords(hd.tlp), ' ', t('tlpNote')),
      src.revoked || c.revoked ? h('p', { class: 'revoked-note' }, t('revokedNote')) : null,
      dl([
        [t('urgency'), urgencyName(c.urgency)],
        [t('category'), categoryName(c.category)],
        [t('region'), this.deps.regionName(c.region)],
        [t('issuingState'), `${this.deps.stateName(c.issuer.state)} (${c.issuer.state}) — ${c.issuer.agency} / ${c.issuer.gateway}`],
        [t('receivedAt'), h('time', { datetime: a.received_at, title: formatUtc(a.received_at) }, formatTime(a.received_at))],
        [t('created'), h('time', { datetime: c.created, title: formatUtc(c.created) }, formatTime(c.created))],
        [t('modified'), h('time', { datetime: c.modified, title: formatUtc(c.modified) }, formatTime(c.modified))],
        [t('validity'), validity(c.valid_from, c.valid_until)],
        [t('position'), t('positionLine', { region: a.region, seq: a.seq })],
        [t('alertId'), h('code', {}, c.id)],
        [t('signature'), sigWords(src.verify, (s) => this.deps.stateName(s))],
        ...(src.inLog ? [[t('transparencyLog'), logWords(src.inLog)] as [string, Child]] : []),
      ]),
      c.correction_note ? section(t('correctionNote'), h('p', {}, String(c.correction_note))) : null,
      section(t('description'), h('p', { class: 'description' }, typeof c.description === 'string' && c.description ? c.description : t('none'))),
      section(
        t('subjects'),
        subjects.length
          ? h(
              'ul',
              {},
              subjects.map((s) => h('li', {}, t('subjectLine', { kind: s.kind, value: s.value, category: s.subject_category, basis: s.basis }))),
            )
          : t('none'),
      ),
      section(t('location'), loc ? `${loc.name ? `${loc.name} — ` : ''}${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` : t('none')),
      section(t('grading'), h('p', {}, gradingWords(g)), h('p', { class: 'muted' }, schemeName(g.scheme))),
      section(
        t('handling'),
        h(
          'ul',
          {},
          hd.codes.map((code) => h('li', {}, codeWords(code))),
        ),
        hd.conditions ? h('p', {}, `${t('conditions')}: `, hd.conditions) : null,
        h('p', {}, onwardWords(hd, c)),
        h('p', {}, evidentialWords(hd)),
      ),
      section(
        t('audience'),
        t('audienceLine', { states: c.audience.states.join(', '), clearance: tk(`clearance_${c.audience.min_clearance}`, c.audience.min_clearance) }),
      ),
      section(
        t('related'),
        related.length
          ? h(
              'ul',
              {},
              related.map((r) => h('li', {}, `${r.rel}: `, h('code', {}, r.ref))),
            )
          : t('none'),
      ),
      section(
        t('externalRefs'),
        refs.length
          ? h(
              'ul',
              {},
              refs.map((r) => h('li', {}, `${r.system}: ${r.ref}`)),
            )
          : t('none'),
      ),
      retention ? section(t('retention'), t('retentionLine', { expires: formatDate(retention.expires) })) : null,
      section(t('versions'), h('div', { class: 'versions', 'aria-live': 'polite' }, t('loading'))),
    );
  }

  private async loadVersions(alert: DeliveredAlert): Promise<void> {
    const box = this.body.querySelector('.versions');
    if (!box) return;
    try {
      const items = await this.deps.versions(alert.content.id);
      if (this.current?.alert !== alert) return;
      const rows = await Promise.all(
        items.map(async (v) => {
          const r = await this.deps.verify(v);
          const c = v.content;
          const revoked = c.revoked === true;
          return h(
            'li',
            { class: revoked ? 'version revoked' : 'version' },
            h(
              'span',
              { class: revoked ? 'struck' : '' },
              c.modified === c.created ? t('versionFirst') : t('versionLine', { modified: formatTime(c.modified) }),
            ),
            revoked ? [' — ', h('strong', {}, t('revoked'))] : null,
            c.correction_note ? [' — ', String(c.correction_note)] : null,
            ' (',
            t('positionLine', { region: v.region, seq: v.seq }),
            ') ',
            r.outcome === 'verified' ? t('verified') : t('sigInvalid'),
          );
        }),
      );
      replace(box, h('ol', {}, rows));
    } catch (err) {
      replace(box, (err as Error).message);
    }
  }
}

function validity(from: string, until: string | undefined): Child {
  return until ? t('validFromTo', { from: formatTime(from), until: formatTime(until) }) : t('validFrom', { from: formatTime(from) });
}

function logWords(r: InLogResult): Child {
  const label = r.state === 'included' ? 'inLog_label' : r.state === 'pending' ? 'logPending_label' : 'notInLog_label';
  // The label without its leading word ("In log: ..."), which the badge already shows.
  const meaning = t(label).replace(/^[^:：]*[:：]\s*/u, '');
  return [inLogBadge(r), ' — ', meaning, r.state === 'included' && r.size ? ` (${t('inLogTree', { size: r.size })})` : ''];
}

import type { AlertContent } from '../../src/domain/types';
import { t, tk, formatTime } from './i18n';

/** The codes of an alert in words a desk officer expects (docs/console.md, domain reference). */

export interface Handling {
  tlp: string;
  codes: string[];
  conditions?: string;
  evidential_use: boolean;
  onward_sharing: string;
}

export interface Grading {
  scheme: string;
  source: string;
  information: string;
}

export const TLP_CLASS: Record<string, string> = {
  'TLP:RED': 'tlp-red',
  'TLP:AMBER+STRICT': 'tlp-amber',
  'TLP:AMBER': 'tlp-amber',
  'TLP:GREEN': 'tlp-green',
  'TLP:CLEAR': 'tlp-clear',
};

export function handlingOf(c: AlertContent): Handling {
  return c.handling;
}

export function tlpWords(tlp: string): string {
  return tk(`tlp_${tlp}`, tlp);
}

export function codeWords(code: string): string {
  return tk(`code_${code}`, code);
}

export function onwardWords(h: Handling, c: AlertContent): string {
  return tk(`onward_${h.onward_sharing}`, h.onward_sharing, { states: c.audience.states.join(', ') });
}

export function evidentialWords(h: Handling): string {
  return t(h.evidential_use ? 'evidential_true' : 'evidential_false');
}

/** e.g. "B3: mostly reliable source, not known personally to the source but corroborated". */
export function gradingWords(g: Grading): string {
  const code = `${g.source}${g.information}`;
  return t('gradingLine', {
    code,
    source: tk(`src_${g.scheme}_${g.source}`, g.source),
    information: tk(`info_${g.scheme}_${g.information}`, g.information),
  });
}

export function schemeName(scheme: string): string {
  return tk(`scheme_${scheme}`, scheme);
}

export function categoryName(c: string): string {
  return tk(`category_${c}`, c);
}

export function urgencyName(u: string): string {
  return tk(`urgency_${u}`, u);
}

export function validityWords(c: AlertContent): string {
  const from = formatTime(String(c.valid_from));
  return c.valid_until ? t('validFromTo', { from, until: formatTime(String(c.valid_until)) }) : t('validFrom', { from });
}

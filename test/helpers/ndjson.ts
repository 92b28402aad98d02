import type { DeliveredAlert } from '../../src/domain/types';

/** The delivered alerts of an NDJSON export, one per non-empty line. */
export function ndjsonAlerts(text: string): DeliveredAlert[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as DeliveredAlert);
}

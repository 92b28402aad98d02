import type { RawEntryView, RawScanRange, RegionLog } from '../../src/ports/region-log';

/** One entry a raw scan handed out, copied out of its (reused) view. */
export interface ScannedEntry {
  seq: number;
  receivedAt: string;
  visibility: string | undefined;
  body: Buffer;
}

export function copyView(e: RawEntryView): ScannedEntry {
  return {
    seq: e.seq,
    receivedAt: e.buf.toString('utf8', e.atStart, e.atEnd),
    visibility: e.visStart < 0 ? undefined : e.buf.toString('utf8', e.visStart, e.visEnd),
    body: Buffer.from(e.buf.subarray(e.bodyStart, e.bodyEnd)),
  };
}

/** Runs scanRaw to the end and returns what it resolved with and every entry it handed out. */
export async function scanAll(
  log: RegionLog,
  range: Omit<RawScanRange, 'batch'> & { batch?: number },
  flush: () => Promise<void> | undefined = () => undefined,
): Promise<{ last: number; entries: ScannedEntry[] }> {
  const entries: ScannedEntry[] = [];
  const last = await log.scanRaw({ batch: 1000, ...range }, { entry: (e) => entries.push(copyView(e)), flush });
  return { last, entries };
}

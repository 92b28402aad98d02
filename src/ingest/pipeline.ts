import type { FastifyBaseLogger } from 'fastify';
import { CordonError, toProblem, type ErrorCode, type ProblemBody } from '../errors';
import { visibilityKey } from '../domain/entitlement';
import { parseJson } from '../domain/json';
import { validateSubmission } from '../domain/validate';
import { decodeProtectedHeader, verifySubmission } from '../domain/signature';
import type { Receipt, Submission } from '../domain/types';
import { LogOutcomeUnknownError, LogUnavailableError, deliveredJson, type AppendInput, type AppendRejection, type LogEntry } from '../ports/region-log';
import type { AppDeps } from '../deps';
import type { LiveTrust } from '../domain/live-trust';
import { alertLeafHash } from '../tlog/leaves';

export type Door = 'http' | 'nats';

export interface IngestResult {
  status: number;
  body: Receipt | ProblemBody;
}

/** One function serves both doors (HTTP and NATS): parse → schema → rules → signature → log → publish. */
export type Ingest = (raw: Buffer | string, door: Door, opts?: { subjectRegion?: string }) => Promise<IngestResult>;

const REJECTION_CODES: Record<AppendRejection, ErrorCode> = {
  equivocation: 'VERSION_EQUIVOCATION',
  stale: 'VERSION_STALE',
  'after-revocation': 'VERSION_AFTER_REVOCATION',
  'field-changed': 'VERSION_FIELD_CHANGED',
  'not-issuer': 'VERSION_NOT_ISSUER',
};

/** Codes raised only after the Ed25519 signature itself verified: the submission was correctly signed. */
const SIGNED_REJECTIONS = new Set<ErrorCode>(['KEY_NOT_AUTHORISED', 'KEY_NOT_VALID', 'SIGNATURE_IAT_OUT_OF_WINDOW', ...Object.values(REJECTION_CODES)]);

/**
 * What the log stores for a verified submission: content and sig exactly as verified (JSON.stringify
 * of the parsed value keeps every value), the version fields the append rules need, and the
 * visibility key replays decide entitlement by. Tests and benches that write the log directly use
 * it too, so their entries are what ingest would have written.
 */
export function appendInputOf(submission: Submission, contentHash: string): AppendInput {
  const { content } = submission;
  return {
    region: content.region,
    id: content.id,
    modified: content.modified,
    created: content.created,
    issuerState: content.issuer.state,
    revoked: content.revoked === true,
    contentHash,
    body: `{"content":${JSON.stringify(content)},"sig":${JSON.stringify(submission.sig)}}`,
    visibility: visibilityKey(content),
  };
}

export function createIngest(deps: AppDeps & { live: LiveTrust; appended?: ReadonlySet<(entry: LogEntry) => void> }, log: FastifyBaseLogger): Ingest {
  const { config, regionLog, bus, audit, live, metrics, now } = deps;
  const parseLimits = { maxBytes: config.maxBodyBytes, maxDepth: config.maxJsonDepth };
  const window = { maxAgeS: config.sigMaxAgeS, maxSkewS: config.sigMaxSkewS };
  const { check } = deps;

  async function accept(raw: Buffer | string, door: Door, subjectRegion?: string): Promise<IngestResult> {
    // The trust store and registry in force now (a reload takes effect for the next submission).
    const { store: trust, regions } = live.current;
    const submission = validateSubmission(parseJson(raw, parseLimits), { regions, memberStates: regions.states });
    const { content } = submission;
    if (subjectRegion !== undefined && subjectRegion !== content.region) {
      throw new CordonError('INGEST_SUBJECT_MISMATCH', `subject region ${subjectRegion} differs from content.region`);
    }
    // The bytes as received go to the signature check: it needs nothing the event loop built.
    const offload = check && { raw: typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw, check };
    const verified = await verifySubmission(submission, trust, { nowMs: now(), ...window, offload });
    const actor = `${verified.state}/${verified.kid}`;
    let outcome;
    try {
      outcome = await regionLog.append({ ...appendInputOf(submission, verified.contentHash), maxAlerts: config.retentionMaxAlerts });
    } catch (err) {
      if (err instanceof LogOutcomeUnknownError) {
        // Sent, never answered: it may be in the log. Never "nothing was accepted" (contract §8).
        log.error({ err, region: content.region, id: content.id }, 'append outcome unknown; the gateway must resubmit');
        throw new CordonError('OUTCOME_UNKNOWN', undefined, { cause: err });
      }
      if (err instanceof LogUnavailableError) {
        log.error({ err, region: content.region }, 'region log unavailable; submission not accepted');
        throw new CordonError('LOG_UNAVAILABLE', undefined, { cause: err });
      }
      throw err;
    }

    if (outcome.outcome === 'duplicate') {
      metrics.ingestAccepted.inc({ door, outcome: 'duplicate' });
      return { status: 200, body: withLeafIndex(outcome.receipt) };
    }
    if (outcome.outcome === 'rejected') {
      const code = REJECTION_CODES[outcome.reason];
      if (outcome.reason === 'equivocation') {
        log.warn(
          { security: true, actor, id: content.id, modified: content.modified, region: content.region },
          'equivocation: same version, different content',
        );
        await recordAudit({
          kind: 'security',
          actor,
          event: 'equivocation',
          code,
          state: verified.state,
          kid: verified.kid,
          id: content.id,
          modified: content.modified,
          region: content.region,
          content_hash: verified.contentHash,
        });
      }
      throw new CordonError(code, versionDetail(outcome.reason, content.id));
    }

    const { receipt, entry } = outcome;
    // Sequenced: the transparency log integrates it within a second (src/tlog).
    deps.tlog?.appended(entry, () => alertLeafHash(entry, verified.canonical, submission.sig));
    // This node's hub delivers its own appends at once (the log's answer, not a bus message).
    if (deps.appended) {
      for (const tell of deps.appended) {
        try {
          tell(entry);
        } catch (err) {
          log.error({ err, region: entry.region, seq: entry.seq }, 'local delivery failed; the doorbell and the position check deliver it');
        }
      }
    }
    metrics.ingestAccepted.inc({ door, outcome: 'new' });
    log.info({ region: receipt.region, seq: receipt.seq, id: receipt.id, door }, 'alert appended');
    // Redis is the truth, the bus is the doorbell: a lost publish is repaired by every node's hub.
    bus.publish(receipt.region, content.urgency, deliveredJson(entry)).catch((err: unknown) => {
      log.warn({ err, region: receipt.region, seq: receipt.seq }, 'publish to bus failed; hubs will repair from the log');
    });
    await recordAudit({
      kind: 'published',
      actor,
      state: verified.state,
      kid: verified.kid,
      id: receipt.id,
      modified: receipt.modified,
      region: receipt.region,
      seq: receipt.seq,
      epoch: receipt.epoch,
      // Audit visibility (contract §7 v1.1): who may read this record is decided from these.
      audience: { states: content.audience.states, min_clearance: content.audience.min_clearance },
    });
    return { status: 201, body: withLeafIndex(receipt) };
  }

  /** The alert is already durable: an audit failure is logged loudly, never turned into a failed receipt. */
  async function recordAudit(record: Parameters<typeof audit.append>[0]): Promise<void> {
    try {
      await audit.append(record);
    } catch (err) {
      log.error({ err, audit: record.kind, id: record.id }, 'audit record could not be written');
    }
  }

  return async function ingest(raw, door, opts = {}) {
    const stop = metrics.ingestSeconds.startTimer({ door });
    try {
      return await accept(raw, door, opts.subjectRegion);
    } catch (err) {
      const body = toProblem(err);
      metrics.ingestRejected.inc({ door, code: body.code });
      if (!(err instanceof CordonError)) {
        log.error({ err }, 'ingest failed unexpectedly');
      } else if (SIGNED_REJECTIONS.has(err.code) && err.code !== 'VERSION_EQUIVOCATION') {
        await auditSignedRejection(raw, err.code);
      }
      return { status: body.status, body };
    } finally {
      stop();
    }
  };

  /** Rejections of correctly signed submissions are audited; unsigned junk only counts in metrics. */
  async function auditSignedRejection(raw: Buffer | string, code: ErrorCode): Promise<void> {
    // Only reached after parse, schema and signature passed, so these cannot throw.
    const submission = JSON.parse(raw.toString()) as Submission;
    const { kid } = decodeProtectedHeader(submission.sig.protected);
    const c = submission.content;
    // The signing key's state: its ops read this record (contract §7 v1.1 audit visibility).
    const state = live.store.alertKey(kid)?.state ?? c.issuer.state;
    await recordAudit({
      kind: 'rejected',
      actor: `${state}/${kid}`,
      code,
      state,
      kid,
      id: c.id,
      modified: c.modified,
      region: c.region,
    });
  }
}

/** Contract §12: receipts carry the alert's leaf in its region's tree. */
function withLeafIndex(receipt: Receipt): Receipt {
  return { ...receipt, leaf_index: receipt.seq - 1 };
}

function versionDetail(reason: AppendRejection, id: string): string {
  switch (reason) {
    case 'equivocation':
      return `${id}: this (id, modified) was already accepted with different content; to change a published alert, sign a new version with a later modified and a correction_note (cordon sign --correct "<note>")`;
    case 'stale':
      return `${id}: a version with an equal or later modified is already held; set modified later than it (cordon sign --correct "<note>" does)`;
    case 'after-revocation':
      return `${id}: the alert was revoked; no version may follow (publish a new alert with a new id: cordon sign --new-id)`;
    case 'field-changed':
      return `${id}: created, region and issuer.state must stay as in the first version; start from the published content and set only modified and correction_note (cordon sign --correct "<note>")`;
    case 'not-issuer':
      return `${id}: only the issuing state may publish new versions`;
  }
}

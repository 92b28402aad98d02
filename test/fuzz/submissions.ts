import fc from 'fast-check';
import type { AlertContent, Submission } from '../../src/domain/types';
import { validContent, minimalContent, timestamp } from '../fixtures/alerts';
import type { TestTrust } from '../helpers/keys';
import { anyBytes, clone, mutate, mutateText, structuralMutation, textBytes, textMutation, type StructuralMutation, type TextMutation } from './lib';

/**
 * Submissions for the ingest doors (HTTP and NATS): random bytes, and mutations of a validly
 * signed submission. Content mutations are signed again (with the right or a wrong state's key,
 * and an iat in or out of the window) so they reach the schema, the rules, the key checks and
 * the version rules of the region log; mutations of the signed submission reach the signature.
 */

export interface SubmissionCase {
  /** What to send (built lazily: a case may need the pool of accepted alerts). */
  build(ctx: SubmissionContext): Buffer;
  /** The region named in the NATS subject: the content's, another, or a random token. */
  subject: number;
}

export interface SubmissionContext {
  trust: TestTrust;
  /** The registry's regions: [0] names KG and CN, [1] KZ and KG. */
  regions: string[];
  /** Submissions accepted so far in this run (new versions, replays, equivocations start here). */
  accepted: Submission[];
}

const STATES = ['KG', 'KZ', 'CN'];
const IAT_OFFSETS_S = [0, 0, 0, -60, -2 * 86_400, 3600, -(2 ** 31)];

function freshContent(kind: number, regions: string[]): AlertContent {
  return kind % 2 === 0
    ? validContent({ region: regions[0] })
    : minimalContent({ region: regions[1], audience: { states: ['KZ'], min_clearance: 'unclassified' } });
}

function sign(ctx: SubmissionContext, content: unknown, signer: number, iatOffset: number): Submission | undefined {
  const c = content as AlertContent;
  const issuer = typeof c?.issuer?.state === 'string' && STATES.includes(c.issuer.state) ? c.issuer.state : 'KG';
  // signer 0-3: the issuer's own key; else one of the three states' keys (wrong for most)
  const state = signer < 4 ? issuer : STATES[signer % 3];
  try {
    return ctx.trust.sign(c, state, Math.floor(Date.now() / 1000) + iatOffset);
  } catch {
    return undefined; // content the signer cannot canonicalise (e.g. not an object): sent unsigned
  }
}

function encode(v: unknown, text: readonly TextMutation[]): Buffer {
  let s = JSON.stringify(v) ?? 'null';
  for (const m of text) s = mutateText(s, m);
  return textBytes(s, text);
}

const contentMutations = fc.oneof(
  { weight: 1, arbitrary: fc.constant([] as StructuralMutation[]) },
  { weight: 4, arbitrary: fc.array(structuralMutation, { minLength: 1, maxLength: 2 }) },
);
const versionMutations = fc.oneof(
  { weight: 3, arbitrary: fc.constant([] as StructuralMutation[]) },
  { weight: 1, arbitrary: fc.array(structuralMutation, { minLength: 1, maxLength: 1 }) },
);
const fewTextMutations = fc.oneof({ weight: 3, arbitrary: fc.constant([] as TextMutation[]) }, fc.array(textMutation, { minLength: 1, maxLength: 2 }));
const signer = fc.integer({ min: 0, max: 6 });
const iat = fc.constantFrom(...IAT_OFFSETS_S);

export const submissionCase: fc.Arbitrary<SubmissionCase> = fc.oneof(
  // random bytes
  {
    weight: 1,
    arbitrary: fc.record({ bytes: anyBytes, subject: fc.nat() }).map(({ bytes, subject }) => ({ subject, build: () => bytes })),
  },
  // content mutated, then signed
  {
    weight: 5,
    arbitrary: fc
      .record({ kind: fc.nat(), cm: contentMutations, signer, iat, tm: fewTextMutations, subject: fc.nat() })
      .map(({ kind, cm, signer: s, iat: off, tm, subject }) => ({
        subject,
        build: (ctx: SubmissionContext) => {
          let content: unknown = freshContent(kind, ctx.regions);
          for (const m of cm) content = mutate(content, m);
          const sub = sign(ctx, content, s, off);
          return encode(sub ?? { content, sig: { protected: 'e30', signature: 'AA' } }, tm);
        },
      })),
  },
  // signed, then the submission itself mutated (signature, header, content after signing)
  {
    weight: 3,
    arbitrary: fc
      .record({ kind: fc.nat(), sm: fc.array(structuralMutation, { minLength: 1, maxLength: 2 }), tm: fewTextMutations, subject: fc.nat() })
      .map(({ kind, sm, tm, subject }) => ({
        subject,
        build: (ctx: SubmissionContext) => {
          let sub: unknown = sign(ctx, freshContent(kind, ctx.regions), 0, 0);
          for (const m of sm) sub = mutate(sub, m);
          return encode(sub, tm);
        },
      })),
  },
  // an accepted alert again: as is (duplicate), a new version, a changed same version, another state's
  {
    weight: 3,
    arbitrary: fc
      .record({ pick: fc.nat(), how: fc.integer({ min: 0, max: 5 }), cm: versionMutations, signer, subject: fc.nat() })
      .map(({ pick, how, cm, signer: s, subject }) => ({
        subject,
        build: (ctx: SubmissionContext) => {
          if (ctx.accepted.length === 0) return encode(sign(ctx, freshContent(pick, ctx.regions), 0, 0), []);
          const prev = ctx.accepted[pick % ctx.accepted.length];
          if (how === 0) return encode(prev, []);
          let content: Record<string, unknown> = clone(prev.content) as unknown as Record<string, unknown>;
          const later = { modified: timestamp(Date.now() + 1000), correction_note: 'corrected (fuzz)' };
          if (how === 1) content = { ...content, ...later };
          if (how === 2) content.title = `${String(content.title)} (changed)`;
          if (how === 3) content = { ...content, modified: timestamp(), revoked: true };
          if (how === 5) {
            // another state of the region versions it: only the issuer may
            const other = (content.issuer as { state: string }).state === 'KG' ? (content.region === ctx.regions[1] ? 'KZ' : 'CN') : 'KG';
            content = { ...content, ...later, issuer: { ...(content.issuer as object), state: other } };
          }
          for (const m of cm) content = mutate(content, m) as Record<string, unknown>;
          return encode(sign(ctx, content, s, 0) ?? content, []);
        },
      })),
  },
);

/**
 * Wire types under their domain names. The JSON Schemas in schemas/ are the source of truth; the
 * shapes come from src/types/generated/schemas.ts (`npm run gen:types`), never a hand-written copy.
 */
import type * as S from '../types/generated/schemas';

export type AlertContent = S.AlertContent;
export type Urgency = AlertContent['urgency'];
export type Category = AlertContent['category'];
export type Clearance = AlertContent['audience']['min_clearance'];
export const CLEARANCE_ORDER: readonly Clearance[] = ['unclassified', 'restricted', 'confidential', 'secret'];

export type JwsSignature = S.SubmissionSig;
export type Submission = S.Submission;
export type ProtectedHeader = S.ProtectedHeader;
export type Receipt = S.Receipt;
export type DeliveredAlert = S.DeliveredAlert;
export type AlertVersions = S.AlertVersions;
export type ReplayPage = S.ReplayPage;
export type Problem = S.Problem;

/** One region of the registry (schemas/region-registry.json). */
export type Region = S.RegionRegistry['regions'][number];

/** A position in a region log. */
export interface Position {
  seq: number;
  epoch: string;
}

/**
 * A verified desk or ops token (contract §7): the claims of schemas/token-claims.json as the
 * verifier hands them on, with `aud` checked to be Cordon.
 */
export type Token = Omit<S.TokenClaims, 'aud' | 'nbf' | 'jti'> & { aud: 'cordon' };

/**
 * Wire types. The JSON Schemas in schemas/ are the source of truth; these interfaces mirror the
 * parts the code reads (test/unit/schema-types.test.ts checks the field names against the schemas).
 */
export type Urgency = 'flash' | 'urgent' | 'routine';
export type Clearance = 'unclassified' | 'restricted' | 'confidential' | 'secret';
export const CLEARANCE_ORDER: readonly Clearance[] = ['unclassified', 'restricted', 'confidential', 'secret'];

export interface AlertContent {
  spec: 'cordon.alert/1';
  id: string;
  created: string;
  modified: string;
  revoked?: boolean;
  correction_note?: string;
  issuer: { state: string; agency: string; gateway: string };
  region: string;
  category: string;
  urgency: Urgency;
  title: string;
  audience: { states: string[]; min_clearance: Clearance };
  [field: string]: unknown;
}

export interface JwsSignature {
  protected: string;
  signature: string;
}

export interface Submission {
  content: AlertContent;
  sig: JwsSignature;
}

export interface ProtectedHeader {
  alg: 'Ed25519';
  kid: string;
  typ: 'cordon-alert+jws';
  iat: number;
}

/** A position in a region log. */
export interface Position {
  seq: number;
  epoch: string;
}

export interface Receipt {
  id: string;
  modified: string;
  region: string;
  seq: number;
  epoch: string;
  received_at: string;
  /** v1.1: leaf of the region's transparency-log tree, seq - 1 (set by ingest). */
  leaf_index?: number;
}

export interface DeliveredAlert {
  region: string;
  seq: number;
  epoch: string;
  received_at: string;
  content: AlertContent;
  sig: JwsSignature;
}

export interface Region {
  code: string;
  name: string;
  states: string[];
}

/** A verified desk or ops token (contract §7). */
export interface Token {
  iss: string;
  sub: string;
  aud: 'cordon';
  iat: number;
  exp: number;
  role: 'desk' | 'ops';
  clearance: Clearance;
  regions?: string[];
}

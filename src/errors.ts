/**
 * Every error a client can see, declared once: a permanent code, an HTTP status and a title.
 * docs/errors.md documents each code; test/unit/errors-doc.test.ts keeps the two in step.
 */
export const ERRORS = {
  // Request parsing (both doors)
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Content type must be application/json' },
  REQUEST_TOO_LARGE: { status: 413, title: 'Request body too large' },
  REQUEST_MALFORMED_JSON: { status: 400, title: 'Body is not well-formed JSON' },
  REQUEST_TOO_DEEP: { status: 400, title: 'JSON nesting too deep' },
  REQUEST_DUPLICATE_KEY: { status: 400, title: 'Duplicate key in a JSON object' },
  REQUEST_FORBIDDEN_KEY: { status: 400, title: 'Forbidden key (__proto__, constructor or prototype)' },
  REQUEST_INVALID_UNICODE: { status: 400, title: 'String is not well-formed Unicode' },
  REQUEST_UNSAFE_NUMBER: { status: 400, title: 'Number outside the safe integer range' },
  REQUEST_MALFORMED_HTTP: { status: 400, title: 'Request is not well-formed HTTP (framing, chunked encoding or headers)' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time' },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  // Submission content
  SUBMISSION_INVALID: { status: 400, title: 'Submission violates the schema or the alert rules' },
  INGEST_SUBJECT_MISMATCH: { status: 400, title: 'NATS subject region differs from content.region' },
  // Signature and keys
  SIGNATURE_HEADER_INVALID: { status: 401, title: 'Protected header is malformed or carries a forbidden parameter' },
  SIGNATURE_KEY_UNKNOWN: { status: 401, title: 'Unknown signing key' },
  SIGNATURE_INVALID: { status: 401, title: 'Signature does not verify' },
  KEY_NOT_AUTHORISED: { status: 403, title: 'Key may not sign for this state or region' },
  KEY_NOT_VALID: { status: 403, title: 'Key is not valid at this time (not yet valid, expired, retired or revoked)' },
  SIGNATURE_IAT_OUT_OF_WINDOW: { status: 422, title: 'Signature iat outside the accepted window' },
  // Versioning (region log)
  VERSION_EQUIVOCATION: { status: 409, title: 'Same id and modified with different content' },
  VERSION_STALE: { status: 409, title: 'A newer version of this alert exists' },
  VERSION_AFTER_REVOCATION: { status: 409, title: 'The alert was revoked; no version may follow' },
  VERSION_FIELD_CHANGED: { status: 409, title: 'created, region and issuer.state may not change between versions' },
  VERSION_NOT_ISSUER: { status: 403, title: 'Only the issuing state may version an alert' },
  // Flow control and availability
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  LOG_UNAVAILABLE: { status: 503, title: 'The region log is unreachable; nothing was accepted, retry' },
  OUTCOME_UNKNOWN: { status: 504, title: 'The append may or may not have happened; resubmit the identical submission' },
  SHUTTING_DOWN: { status: 503, title: 'This node is shutting down; retry on another node' },
  INTERNAL: { status: 500, title: 'Internal error' },
  // Callers (desks and ops)
  TOKEN_MISSING: { status: 401, title: 'A bearer token is required' },
  TOKEN_INVALID: { status: 401, title: 'Token is malformed, expired or not signed by a trusted token key' },
  ROLE_FORBIDDEN: { status: 403, title: 'This role may not call this endpoint' },
  PURPOSE_REQUIRED: { status: 400, title: 'Ops calls must state a purpose' },
  QUERY_INVALID: { status: 400, title: 'Query parameters are invalid' },
  REGION_NOT_FOUND: { status: 404, title: 'Unknown region' },
  ALERT_NOT_FOUND: { status: 404, title: 'Alert not found' },
  HISTORY_TRIMMED: { status: 410, title: 'The requested history is no longer held' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  NOT_ACCEPTABLE: { status: 406, title: 'Cannot produce the requested media type' },
  // Transparency log (contract §12; docs/transparency.md)
  LOG_TREE_NOT_FOUND: { status: 404, title: 'No such checkpoint or tile (the tree is empty, not integrated yet, or the log is off)' },
  LOG_TREE_RANGE: { status: 400, title: 'The leaf or tree size is outside the signed tree' },
  // Desk stream frames (GET /v1/stream error frames; docs/protocol.md)
  STREAM_FRAME_MALFORMED: { status: 400, title: 'Stream frame is not a well-formed JSON object' },
  STREAM_FRAME_INVALID: { status: 400, title: 'Stream frame violates the frame schema' },
  STREAM_REGION_FORBIDDEN: { status: 403, title: 'This token may not watch the region' },
  STREAM_ALREADY_SUBSCRIBED: { status: 409, title: 'The session is already subscribed to the region' },
  STREAM_POSITION_AHEAD: { status: 400, title: 'from.seq is beyond the newest seq of the region' },
  STREAM_ACK_UNKNOWN: { status: 404, title: 'No alert this desk may see at that position' },
  STREAM_TOO_MANY_SESSIONS: { status: 429, title: 'This token already has the most stream sessions allowed on this node' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface FieldError {
  path: string;
  message: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: FieldError[];
  [extra: string]: unknown;
}

/** An error a client may see. `detail` must never carry internal messages. */
export class CordonError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors?: FieldError[];
  readonly extra?: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, opts: { errors?: FieldError[]; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    super(detail ?? ERRORS[code].title, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CordonError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.errors = opts.errors;
    this.extra = opts.extra;
  }

  toProblem(): ProblemBody {
    return problemBody(this.code, this.message, this.errors, this.extra);
  }
}

export const PROBLEM_TYPE_BASE = 'https://cordon.invalid/problems/';

export function problemBody(code: ErrorCode, detail?: string, errors?: FieldError[], extra?: Record<string, unknown>): ProblemBody {
  const def = ERRORS[code];
  const body: ProblemBody = {
    type: PROBLEM_TYPE_BASE + code.toLowerCase().replace(/_/g, '-'),
    title: def.title,
    status: def.status,
    detail: detail ?? def.title,
    code,
    ...extra,
  };
  if (errors && errors.length > 0) body.errors = errors;
  return body;
}

/** Turns anything thrown into a problem body; unknown errors become a bare 500 that leaks nothing. */
export function toProblem(err: unknown): ProblemBody {
  if (err instanceof CordonError) return err.toProblem();
  return problemBody('INTERNAL', 'An internal error occurred');
}

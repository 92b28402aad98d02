import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { CordonError, problemBody, toProblem, type ErrorCode, type ProblemBody } from '../errors';
import { LogUnavailableError } from '../ports/region-log';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function sendProblem(reply: FastifyReply, body: ProblemBody): FastifyReply {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** Fastify's own errors (body limit, media type, route schemas, closing) mapped onto our registry. */
function fromFastifyError(err: FastifyError): ProblemBody | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return problemBody('REQUEST_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return err.statusCode === 415 ? problemBody('REQUEST_UNSUPPORTED_MEDIA_TYPE') : undefined;
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return problemBody('REQUEST_MALFORMED_JSON');
  }
  if (err.validation) {
    const errors = err.validation.map((v) => ({
      path: `/${err.validationContext ?? 'request'}${v.instancePath}${
        v.keyword === 'required' ? '/' + String((v.params as { missingProperty: string }).missingProperty) : ''
      }`,
      message: v.message ?? 'is invalid',
    }));
    return problemBody('QUERY_INVALID', err.message, errors);
  }
  if (err.statusCode === 415) return problemBody('REQUEST_UNSUPPORTED_MEDIA_TYPE');
  if (err.statusCode === 413) return problemBody('REQUEST_TOO_LARGE');
  if (err.statusCode === 429) return problemBody('RATE_LIMITED');
  if (err.statusCode === 503) return problemBody('SHUTTING_DOWN');
  return undefined;
}

/**
 * An adapter's "the store is unreachable" (LogUnavailableError, and its subclass
 * LogOutcomeUnknownError: on a read both mean "not now") is 503 LOG_UNAVAILABLE, a retry, never a
 * bare 500: the one rule for every route that reads the region log or the audit trail, so that
 * handlers do not catch it themselves.
 */
function fromStoreError(err: unknown): ProblemBody | undefined {
  if (!(err instanceof LogUnavailableError)) return undefined;
  return problemBody('LOG_UNAVAILABLE', 'The region log or audit trail is unreachable; retry');
}

/**
 * Every error leaves as RFC 9457 problem+json with a documented code; 5xx never echo internals.
 * Set on the root instance: every plugin's errors end here.
 */
export function problemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const body = err instanceof CordonError ? err.toProblem() : (fromStoreError(err) ?? fromFastifyError(err));
    if (body) {
      if (body.status >= 500) request.log.error({ err }, 'request failed');
      return sendProblem(reply, body);
    }
    request.log.error({ err }, 'unhandled error');
    return sendProblem(reply, toProblem(err));
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemBody('ROUTE_NOT_FOUND', `${request.method} ${request.url.split('?')[0]} does not exist`)),
  );
}

/** What Node's HTTP layer refuses before any route runs, by its error code. */
function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'REQUEST_HEADERS_TOO_LARGE';
  return 'REQUEST_MALFORMED_HTTP';
}

/**
 * Fastify's `clientErrorHandler`: a request cut by the header or request time, or a malformed one
 * (bad chunked body, header line, framing), gets a problem+json answer with a documented code and
 * the connection is closed. `onRefused` counts it.
 */
export function clientErrorHandler(onRefused: (code: ErrorCode) => void) {
  return function handle(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const code = clientErrorCode(err);
    onRefused(code);
    this.log.debug({ code, err: err.code }, 'client request refused by the HTTP layer');
    // As Node does: answer only if no response has started on this connection.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const problem = problemBody(code);
      const body = JSON.stringify(problem);
      socket.end(
        `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroySoon();
  };
}

import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import { CordonError } from '../errors';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_BASE, schemaRegistry, schemasDir } from '../domain/schemas';
import { parseQuery } from './ops';

/**
 * Route schemas (issue 9): every route declares its params, query string, body and main answer
 * from the JSON Schemas of schemas/, so the OpenAPI document (GET /v1/openapi.json) and the
 * validation are one thing. They are checked by the project's one strict Ajv instance
 * (src/domain/schemas.ts), never by Fastify's own, and a refusal keeps its documented code.
 */

/** `{ $ref }` to schemas/<name>.json, or to its `$defs` entry `def` (the app adds every file of schemas/ by its `$id`). */
export function ref(name: string, def?: string): { $ref: string } {
  return { $ref: SCHEMA_BASE + name + '.json' + (def ? `#/$defs/${def}` : '') };
}

/** The schema file a route part names by `$ref` (or `$id`), e.g. 'replay-query'. */
function schemaName(schema: { $ref?: unknown; $id?: unknown }): string | undefined {
  const id = typeof schema.$ref === 'string' ? schema.$ref : typeof schema.$id === 'string' ? schema.$id : undefined;
  if (!id?.startsWith(SCHEMA_BASE) || !id.endsWith('.json')) return undefined;
  return id.slice(SCHEMA_BASE.length, -'.json'.length);
}

/**
 * The app's validatorCompiler. Query strings go through parseQuery (each parameter at most once,
 * integers as plain decimal text, the schema's defaults filled in) and a refusal is
 * 400 QUERY_INVALID listing every problem, as the handlers answered before. Path parameters are
 * checked against their inline schema (a refusal answers as an unknown route). Bodies and headers
 * are not validated here: the one JSON body (POST /v1/alerts) is parsed and validated by the
 * ingest pipeline from the bytes sent, and its route says so with its own compiler.
 */
export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart, url }) => {
  const s = schema as { $ref?: unknown; $id?: unknown };
  if (httpPart === 'querystring') {
    const name = schemaName(s);
    if (!name) throw new Error(`${url}: the query string schema must be a $ref to schemas/`);
    return (data: unknown) => {
      try {
        return { value: parseQuery<Record<string, unknown>>(name, data) };
      } catch (err) {
        return { error: err as Error };
      }
    };
  }
  if (httpPart === 'params') {
    const validate = schemaRegistry().compile(schema as object);
    return (data: unknown) => (validate(data) ? { value: data } : { error: new CordonError('ROUTE_NOT_FOUND', 'A path segment is not valid') });
  }
  throw new Error(`${url}: ${httpPart ?? 'this part'} is not validated by route schemas (give the route its own validatorCompiler)`);
};

/** For a route whose declared schema is documentation only (the handler validates that part itself). */
export const documentedOnly: FastifySchemaCompiler<unknown> = () => () => true;

/**
 * Answers are written as before, by JSON.stringify (or as the handler's own text): a response
 * schema documents the answer and never strips or reorders what clients get.
 */
export const serializerCompiler: FastifySerializerCompiler<unknown> = () => (data) => JSON.stringify(data);

/** Every schema of schemas/ (but the configuration's), for app.addSchema: route `$ref`s resolve against them. */
export function sharedSchemas(): Array<{ $id: string }> {
  const dir = schemasDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'config.json')
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { $id: string });
}

/** For the schema of a route behind authHook: documented as taking a bearer token. */
export const bearer = { security: [{ bearer: [] }] };

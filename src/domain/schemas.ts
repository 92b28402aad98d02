import Ajv2020, { type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FieldError } from '../errors';

/**
 * The one Ajv instance. Every JSON Schema in schemas/ is loaded once by its `$id`
 * (`https://cordon.invalid/schemas/<name>.json`) and compiled once.
 */
export const SCHEMA_BASE = 'https://cordon.invalid/schemas/';

/** schemas/ sits at the repository root; from dist/src/domain it is three levels up, from src/domain two. */
export function schemasDir(): string {
  for (const up of ['../..', '../../..']) {
    const dir = resolve(__dirname, up, 'schemas');
    try {
      readdirSync(dir);
      return dir;
    } catch {
      /* try the next candidate */
    }
  }
  throw new Error('schemas/ directory not found');
}

let ajv: Ajv2020 | undefined;

export function schemaRegistry(): Ajv2020 {
  if (ajv) return ajv;
  const instance = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true });
  addFormats(instance);
  const dir = schemasDir();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    instance.addSchema(JSON.parse(readFileSync(join(dir, file), 'utf8')) as SchemaObject);
  }
  ajv = instance;
  return instance;
}

const compiled = new Map<string, ValidateFunction>();

/** The compiled validator for schema `name` (e.g. 'alert-content'). */
export function validator(name: string): ValidateFunction {
  let fn = compiled.get(name);
  if (!fn) {
    fn = schemaRegistry().getSchema(SCHEMA_BASE + name + '.json');
    if (!fn) throw new Error(`unknown schema ${name}`);
    compiled.set(name, fn);
  }
  return fn;
}

/** Ajv errors as contract `errors: [{ path, message }]`, paths as JSON Pointers below `prefix`. */
export function fieldErrors(errors: ErrorObject[] | null | undefined, prefix = ''): FieldError[] {
  return (errors ?? []).map((e) => {
    let path = prefix + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path += '/' + String((e.params as { additionalProperty: string }).additionalProperty);
      message = 'is not allowed';
    } else if (e.keyword === 'required') {
      path += '/' + String((e.params as { missingProperty: string }).missingProperty);
      message = 'is required';
    } else if (e.keyword === 'enum') {
      message += ': ' + (e.params as { allowedValues: unknown[] }).allowedValues.join(', ');
    }
    return { path: path || '/', message };
  });
}

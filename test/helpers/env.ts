import { randomBytes } from 'node:crypto';

/** Real services the tests use; CI and this machine run them locally (see test/helpers/global-setup.js). */
export const TEST_REDIS_URL = process.env.CORDON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_NATS_URL = process.env.CORDON_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A unique token for isolating one test's keys, subjects and region names. */
export function uniqueId(): string {
  return randomBytes(5).toString('hex');
}

/** A unique Redis key prefix, e.g. `cordon-test:1a2b3c4d5e:`. Tests never flush the database. */
export function uniqueKeyPrefix(): string {
  return `cordon-test:${uniqueId()}:`;
}

/** A unique NATS subject prefix, e.g. `cordon-test-1a2b3c4d5e`. */
export function uniqueSubjectPrefix(): string {
  return `ctest-${uniqueId()}`;
}

/** A unique valid region code (^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$). */
export function uniqueRegion(a = 'KG', b = 'CN'): string {
  return `${a}-${b}-${String(Math.floor(Math.random() * 100)).padStart(2, '0')}`;
}

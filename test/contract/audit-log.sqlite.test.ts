import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAuditLog } from '../../src/adapters/sqlite/audit-log';
import { SqliteStore, STORE_FILE } from '../../src/adapters/sqlite/store';
import { describeAuditLogContract } from './audit-log.contract';

describeAuditLogContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-'));
  const log = new SqliteAuditLog(SqliteStore.open(join(dir, STORE_FILE)), { ownsStore: true });
  return {
    log,
    async cleanup() {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteAuditLog (SQLite specifics)', () => {
  it('keeps the trail and its numbering across a close and a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-'));
    const file = join(dir, STORE_FILE);
    try {
      const first = new SqliteAuditLog(SqliteStore.open(file), { ownsStore: true });
      const a = await first.append({ kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: 3 });
      await first.close();
      const second = new SqliteAuditLog(SqliteStore.open(file), { ownsStore: true });
      const b = await second.append({ kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: 4 });
      expect(b.n).toBe(a.n + 1);
      expect(b.at >= a.at).toBe(true);
      expect(await second.read(0, 10)).toEqual({ items: [a, b], next: null });
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

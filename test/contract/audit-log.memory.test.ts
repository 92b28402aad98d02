import { MemoryAuditLog } from '../../src/adapters/memory/audit-log';
import { describeAuditLogContract } from './audit-log.contract';

describeAuditLogContract('memory', async () => {
  const log = new MemoryAuditLog();
  return { log, cleanup: () => log.close() };
});

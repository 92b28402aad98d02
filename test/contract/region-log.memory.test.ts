import { MemoryRegionLog } from '../../src/adapters/memory/region-log';
import { describeRegionLogContract } from './region-log.contract';

describeRegionLogContract('memory', async () => {
  // One process, one store: the "peer" is the same instance, still exercising concurrent appends.
  const log = new MemoryRegionLog();
  return { log, peer: log, cleanup: () => log.close() };
});

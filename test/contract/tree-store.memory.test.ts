import { MemoryTreeStore } from '../../src/adapters/memory/tree-store';
import { describeTreeStoreContract } from './tree-store.contract';

describeTreeStoreContract('memory', async () => {
  const store = new MemoryTreeStore();
  return { store, peer: store, cleanup: () => store.close() };
});

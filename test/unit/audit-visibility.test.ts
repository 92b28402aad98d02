import { actorState, auditVisible } from '../../src/domain/audit-visibility';
import type { AuditRecord } from '../../src/ports/audit-log';
import type { Token } from '../../src/domain/types';

const token = (iss: string, over: Partial<Token> = {}): Token => ({
  iss,
  sub: `ops-${iss}`,
  aud: 'cordon',
  iat: 0,
  exp: 0,
  role: 'ops',
  clearance: 'secret',
  ...over,
});
const rec = (r: Omit<AuditRecord, 'n' | 'at'>): AuditRecord => ({ n: 1, at: '2026-01-01T00:00:00.000Z', ...r }) as AuditRecord;

describe('audit visibility (contract §7 v1.1)', () => {
  const published = rec({
    kind: 'published',
    actor: 'KG/kid1',
    state: 'KG',
    region: 'KG-CN-01',
    audience: { states: ['KG', 'CN'], min_clearance: 'confidential' },
  });

  test('published: the issuer, and the audience with clearance and regions', () => {
    expect(auditVisible(token('KG', { clearance: 'unclassified' }), published)).toBe(true);
    expect(auditVisible(token('CN'), published)).toBe(true);
    expect(auditVisible(token('CN', { clearance: 'restricted' }), published)).toBe(false);
    expect(auditVisible(token('CN', { regions: ['KZ-KG-01'] }), published)).toBe(false);
    expect(auditVisible(token('KZ'), published)).toBe(false);
  });

  test('ack: the desk state and the issuing state', () => {
    const ack = rec({ kind: 'ack', actor: 'CN/desk-1', region: 'KG-CN-01', seq: 4, issuer_state: 'KG' });
    expect(auditVisible(token('CN'), ack)).toBe(true);
    expect(auditVisible(token('KG'), ack)).toBe(true);
    expect(auditVisible(token('KZ'), ack)).toBe(false);
  });

  test('rejected and security: the state of the signing key', () => {
    for (const kind of ['rejected', 'security'] as const) {
      const r = rec({ kind, actor: 'KG/kid1', state: 'KG', id: 'alert--x', region: 'KG-CN-01' });
      expect(auditVisible(token('KG'), r)).toBe(true);
      expect(auditVisible(token('CN'), r)).toBe(false);
    }
  });

  test('replayed: only the actor state, so no other state reads a purpose', () => {
    const r = rec({ kind: 'replayed', actor: 'KG/ops-1', purpose: 'informant', target: 'region', region: 'KG-CN-01' });
    expect(auditVisible(token('KG'), r)).toBe(true);
    expect(auditVisible(token('CN'), r)).toBe(false);
  });

  test('records written before v1.1 (no audience, no issuer_state) fall back to the actor rule', () => {
    const oldPublished = rec({ kind: 'published', actor: 'KG/kid1', state: 'KG', region: 'KG-CN-01' });
    const oldAck = rec({ kind: 'ack', actor: 'CN/desk-1', region: 'KG-CN-01', seq: 4 });
    expect(auditVisible(token('CN'), oldPublished)).toBe(false);
    expect(auditVisible(token('KG'), oldPublished)).toBe(true);
    expect(auditVisible(token('KG'), oldAck)).toBe(false);
    expect(auditVisible(token('CN'), oldAck)).toBe(true);
    // Malformed members never widen what is shown.
    const odd = rec({ kind: 'published', actor: 'KG/kid1', state: 'KG', region: 'KG-CN-01', audience: { states: 'CN', min_clearance: 'top' } });
    expect(auditVisible(token('CN'), odd)).toBe(false);
    expect(auditVisible(token('CN'), rec({ ...published, audience: { states: ['CN'], min_clearance: 'top' } }))).toBe(false);
  });

  test('actorState reads the state before the slash', () => {
    expect(actorState('KG/desk-1')).toBe('KG');
    expect(actorState('KG')).toBeUndefined();
    expect(actorState('/x')).toBeUndefined();
    expect(actorState(42)).toBeUndefined();
  });
});

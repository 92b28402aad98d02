import type { NatsConnection } from '@nats-io/nats-core';
import { randomUUID } from 'node:crypto';
import type { RegionRegistry } from '../domain/regions';
import { decodeProtectedHeader, signContent } from '../domain/signature';
import type { AlertContent, Region, Submission } from '../domain/types';
import { CliError, defineCommand, integer, print, readJson, UsageError } from './args';
import type { CliIo } from './command';
import { loadNatsClientConfig } from '../config';
import { loadSigningKey } from './keygen';
import { adjust, checkBeforeSigning, loadRegions, versionOptions } from './sign';

const DEFAULT_URL = 'http://127.0.0.1:8080';
const HOUR_MS = 3_600_000;

const SCENARIOS = [
  {
    category: 'suspected-consignment',
    urgency: 'urgent',
    title: (r: Region) => `Suspected heroin consignment in a white Kamaz truck heading for ${r.name}`,
    description:
      'Source reports about 40 kg of heroin concealed in a false floor under a load of dried apricots.\n' +
      'Expected at the crossing within 24 hours. Request a full search of the vehicle.',
    subjects: [
      { kind: 'vehicle', value: 'White Kamaz 65115 truck with a blue tarpaulin, plate 01 123 ABA', subject_category: 'suspect', basis: 'assessment' },
      { kind: 'substance', value: 'heroin, about 40 kg', subject_category: 'other', basis: 'assessment' },
    ],
  },
  {
    category: 'precursor-diversion',
    urgency: 'routine',
    title: (r: Region) => `Acetic anhydride declared as industrial solvent, expected at ${r.name}`,
    description: 'Two 20-foot containers with falsified customs declarations; consignee is a shell company.',
    subjects: [
      { kind: 'container', value: 'MSKU 482915-3', subject_category: 'suspect', basis: 'fact' },
      { kind: 'substance', value: 'acetic anhydride, 16 t', subject_category: 'other', basis: 'assessment' },
    ],
  },
  {
    category: 'seizure',
    urgency: 'flash',
    title: (r: Region) => `Seizure of 12 kg methamphetamine at ${r.name}; driver's associates may cross today`,
    description: 'Concealed in the spare tyre. The driver named two associates travelling separately by minibus.',
    subjects: [{ kind: 'person-ref', value: 'national case ref 2026-0415-77', subject_category: 'suspect', basis: 'fact' }],
  },
] as const;

/** A realistic alert for a state and region, valid against the contract (used by --demo and tests). */
export function demoContent(state: string, region: Region, nowMs = Date.now()): AlertContent {
  const scenario = SCENARIOS[Math.floor(Math.random() * SCENARIOS.length)];
  const ts = new Date(nowMs).toISOString();
  const agency = `${state.toLowerCase()}-border-service`;
  return {
    spec: 'cordon.alert/1',
    id: `alert--${randomUUID()}`,
    created: ts,
    modified: ts,
    issuer: { state, agency, gateway: `${state.toLowerCase()}-gateway-demo` },
    region: region.code,
    category: scenario.category,
    urgency: scenario.urgency,
    title: scenario.title(region),
    description: scenario.description,
    valid_from: ts,
    valid_until: new Date(nowMs + 48 * HOUR_MS).toISOString(),
    subjects: scenario.subjects.map((s) => ({ ...s })),
    grading: { scheme: 'europol-4x4', source: 'B', information: '2' },
    handling: { tlp: 'TLP:AMBER', codes: ['H2'], evidential_use: false, onward_sharing: 'with-permission' },
    audience: { states: [...new Set([state, ...region.states])], min_clearance: 'restricted' },
    retention: { expires: new Date(nowMs + 365 * 24 * HOUR_MS).toISOString().slice(0, 10) },
  };
}

/** A region for the demo: --region, else the key's first region; from the registry, else from the code. */
function demoRegion(code: string | undefined, keyRegions: string[] | undefined, regions: RegionRegistry): Region {
  const chosen = code ?? keyRegions?.[0];
  if (!chosen) throw new UsageError('--demo needs --region (the key file does not name its regions)');
  const known = regions.get(chosen);
  if (known) return known;
  throw new CliError(`region ${chosen} is not in the region registry (give --regions FILE)`);
}

async function postHttp(url: string, submission: Submission): Promise<{ status: number; body: unknown }> {
  const target = new URL('/v1/alerts', url).toString();
  let res: Response;
  try {
    res = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(submission) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach ${target}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* print the raw text */
  }
  return { status: res.status, body };
}

async function requestNats(
  servers: string,
  subject: string,
  submission: Submission,
  timeoutMs: number,
  env: CliIo['env'],
): Promise<{ status: number; body: unknown }> {
  const { connect } = await import('@nats-io/transport-node');
  const { natsAuthOf, natsAuthOptions } = await import('../adapters/nats/bus');
  let login;
  try {
    // The gateway's own login, from the same CORDON_NATS_* variables a node reads.
    const config = loadNatsClientConfig(env);
    login = { inboxPrefix: config.natsInboxPrefix, ...natsAuthOptions(natsAuthOf(config)) };
  } catch (err) {
    throw new CliError((err as Error).message, { cause: err });
  }
  // transport-node's declared NatsConnection is re-exported through a subpath this tsconfig cannot
  // resolve (see adapters/nats/bus.ts); nats-core's is the same interface.
  let nc: NatsConnection;
  try {
    nc = (await connect({ servers: servers.split(','), name: 'cordon-cli', ...login })) as NatsConnection;
  } catch (err) {
    throw new CliError(`cannot connect to NATS at ${servers}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const msg = await nc.request(subject, JSON.stringify(submission), { timeout: timeoutMs });
    const body = msg.json<Record<string, unknown>>();
    return { status: typeof body.status === 'number' ? body.status : 0, body };
  } catch (err) {
    const why = (err as Error).message;
    // Nobody listens on that subject: most often the node runs with another subject prefix.
    const hint =
      /no responders|503/i.test(why) || /NoRespondersError/.test((err as Error).name)
        ? `; no Cordon node listens on ${subject}: is the node's CORDON_NATS_SUBJECT_PREFIX different? (give it with --subject-prefix)`
        : '';
    throw new CliError(`no reply on ${subject}: ${why}${hint}`, { cause: err });
  } finally {
    await nc.close();
  }
}

export const publish = defineCommand({
  name: 'publish',
  summary: 'Sign alert content and publish it (HTTP POST /v1/alerts or NATS request); prints the receipt',
  usage: `--key KEY.jwk.json (--in content.json | --demo [--region CODE]) [--correct NOTE | --revoke NOTE] [--url URL | --nats nats://HOST:4222] [--regions FILE]
  --key      private alert key file (e.g. .cordon/keys/KG-alert.jwk.json of the embedded server)
  --in       alert content to sign and publish; a submission signed already (cordon sign) is
             published as it is, without --key
  --correct  publish the next version of a published alert (--in: its content with your edits):
             modified = now, correction_note = NOTE
  --revoke   publish the revocation of a published alert (--in: its content): revoked, modified = now,
             correction_note = NOTE
  --demo     publish a realistic generated alert for the key's state and region
  --region   the demo region (default: the key's first region)
  --url      Cordon HTTP base URL (default ${DEFAULT_URL})
  --nats     publish as a NATS request on <prefix>.ingest.<region> instead; the NATS login (user and
             password, token, NKey seed, .creds, TLS files) comes from the CORDON_NATS_* variables
  --subject-prefix  NATS subject prefix (default: CORDON_NATS_SUBJECT_PREFIX, else cordon)
  --timeout  NATS request timeout in ms (default 5000)
  --regions  region registry file (default: CORDON_REGIONS, else the built-in example)
Exit 0 when the alert was accepted (201, or 200 for an identical resubmission), 1 otherwise.`,
  options: {
    key: { type: 'string' },
    in: { type: 'string' },
    demo: { type: 'boolean' },
    correct: { type: 'string' },
    revoke: { type: 'string' },
    region: { type: 'string' },
    url: { type: 'string' },
    nats: { type: 'string' },
    'subject-prefix': { type: 'string' },
    timeout: { type: 'string' },
    regions: { type: 'string' },
  },
  async run(values, io: CliIo) {
    if ((values.in === undefined) === (values.demo !== true)) throw new UsageError('give exactly one of --in and --demo');
    if (values.url !== undefined && values.nats !== undefined) throw new UsageError('give at most one of --url and --nats');
    if (values.region !== undefined && values.demo !== true) throw new UsageError('--region applies to --demo only');
    const version = versionOptions(values);
    if (values.demo && (version.correct ?? version.revoke) !== undefined) throw new UsageError('--correct and --revoke apply to --in only');
    const timeoutMs = integer(values.timeout, 'timeout', 1) ?? 5000;

    let submission: Submission;
    const given = values.in === undefined ? undefined : readJson(values.in, io, 'content file');
    const versioning = (version.correct ?? version.revoke) !== undefined;
    if (isSubmission(given) && !versioning) {
      // Signed already (cordon sign): publish it as it is; the node checks the signature.
      if (values.key !== undefined)
        throw new UsageError(`${values.in} is a signed submission already and is published as it is; leave out --key (or give its content to re-sign)`);
      submission = given;
      io.stderr.write(`${values.in} is signed already (${describeSig(given)}): publishing it as it is\n`);
    } else {
      if (values.key === undefined) throw new UsageError('--key is required');
      const key = loadSigningKey(values.key, io);
      const regions = loadRegions(values.regions, io);
      let content: unknown;
      if (values.demo) {
        if (key.state === undefined) throw new CliError('--demo needs a key file that names its state (from keygen or the development trust store)');
        content = demoContent(key.state, demoRegion(values.region, key.regions, regions));
      } else {
        // A submission given with --correct/--revoke: its content is the version being replaced.
        content = isSubmission(given) ? given.content : given;
        if (isObject(content)) content = adjust(content, version);
      }
      submission = signContent(checkBeforeSigning(content, key, regions), key);
    }

    const reply = values.nats
      ? await requestNats(
          values.nats,
          `${values['subject-prefix'] ?? io.env.CORDON_NATS_SUBJECT_PREFIX ?? 'cordon'}.ingest.${submission.content.region}`,
          submission,
          timeoutMs,
          io.env,
        )
      : await postHttp(values.url ?? DEFAULT_URL, submission);
    const ok = reply.status === 200 || reply.status === 201;
    if (ok) {
      const what = submission.content.revoked === true ? 'revocation of ' : submission.content.correction_note !== undefined ? 'correction of ' : '';
      io.stderr.write(`${reply.status === 201 ? 'published' : 'already published'}: ${what}${submission.content.id} in ${submission.content.region}\n`);
      print(io, reply.body);
    } else {
      io.stderr.write(`rejected with status ${reply.status}:\n`);
      print(io, reply.body);
    }
    return ok ? 0 : 1;
  },
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{ content, sig: { protected, signature } }`: what `cordon sign` writes. */
function isSubmission(v: unknown): v is Submission {
  return isObject(v) && isObject(v.content) && isObject(v.sig) && typeof v.sig.protected === 'string' && typeof v.sig.signature === 'string';
}

function describeSig(s: Submission): string {
  try {
    const h = decodeProtectedHeader(s.sig.protected);
    return `key ${h.kid}, ${new Date(h.iat * 1000).toISOString()}`;
  } catch {
    return 'its protected header does not decode; the node will say why';
  }
}

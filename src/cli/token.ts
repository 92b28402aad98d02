import { fieldErrors, validator } from '../domain/schemas';
import { issueToken } from '../domain/tokens';
import type { Token } from '../domain/types';
import { CliError, defineCommand, duration, list, required, UsageError } from './args';
import { loadSigningKey } from './keygen';

export const token = defineCommand({
  name: 'token',
  summary: 'Issue a desk or ops token signed with a state token key',
  usage: `--key TOKEN_KEY.jwk.json --iss KZ --sub desk-almaty --role desk|ops --clearance LEVEL [--regions R1,R2] [--ttl 8h]
  --key        private token key file of the issuing state (keygen --use token, or .cordon/keys/)
  --iss        issuing state (default: the state the key file names)
  --sub        desk or person id
  --role       desk or ops
  --clearance  unclassified, restricted, confidential or secret
  --regions    narrow what the token may watch
  --ttl        lifetime: 90s, 30m, 8h, 2d (default 8h); nodes refuse more than CORDON_TOKEN_MAX_TTL_S (default 12h)
Prints the compact token; send it as Authorization: Bearer <token>.`,
  options: {
    key: { type: 'string' },
    iss: { type: 'string' },
    sub: { type: 'string' },
    role: { type: 'string' },
    clearance: { type: 'string' },
    regions: { type: 'string' },
    ttl: { type: 'string' },
  },
  async run(values, io) {
    const key = loadSigningKey(required(values.key, 'key'), io);
    if (key.use === 'alert') throw new CliError('this is an alert key; tokens are signed with a token key');
    const iss = values.iss ?? key.state;
    if (iss === undefined) throw new UsageError('--iss is required (the key file does not name its state)');
    if (key.state !== undefined && key.state !== iss) throw new CliError(`the key belongs to ${key.state}, not to ${iss}`);
    const ttl = duration(values.ttl, 'ttl') ?? 8 * 3600;
    const iat = Math.floor(Date.now() / 1000);
    const claims = {
      iss,
      sub: required(values.sub, 'sub'),
      aud: 'cordon',
      iat,
      exp: iat + ttl,
      role: required(values.role, 'role'),
      clearance: required(values.clearance, 'clearance'),
      ...(values.regions !== undefined ? { regions: list(values.regions) } : {}),
    };
    const validate = validator('token-claims');
    if (!validate(claims)) {
      throw new UsageError(
        fieldErrors(validate.errors)
          .map((e) => `${e.path.replace(/^\//, '--')} ${e.message}`)
          .join('; '),
      );
    }
    const { aud: _aud, ...rest } = claims as Token;
    io.stdout.write(issueToken(rest, key) + '\n');
    return 0;
  },
});

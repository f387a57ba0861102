/**
 * A small Docker token service (docs/spec/auth/token.md, oauth.md) for end-to-end tests: it checks
 * Basic credentials (or an OAuth2 form), grants the scopes asked for, and signs JWTs (ES256) that the
 * REAL registry verifies against the certificate bundle it is started with (`rootCertBundle`).
 *
 * distribution 2.8 finds the signing key from the JWT header: `x5c` (a chain up to the bundle) first,
 * else `kid` = the libtrust key ID of a bundle key. Both are set; `header` picks one for tests of each.
 *
 * @example
 * const tokens = await startTokenServer({ users: { alice: 's3cret' } });
 * const registry = await startRegistry({ token: tokens.registryConfig });
 * // push to registry.host with --creds alice:s3cret … then: tokens.requests
 */
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { SignJWT } from 'jose';

const run = promisify(execFile);

export interface TokenServerOptions {
  /** Users and their passwords. */
  users?: Record<string, string>;
  /** OAuth2 refresh tokens (config.json `identitytoken`) and the user each stands for. */
  refreshTokens?: Record<string, string>;
  /** Where to listen (default 127.0.0.1); another loopback address (127.0.0.2) plays "another host". */
  host?: string;
  /** Serve HTTPS with a throwaway CA (returned as `caFile`). */
  tls?: boolean;
  /** `service` and `issuer` the registry is configured with (defaults `rxpush-registry`, `rxpush-token-server`). */
  service?: string;
  issuer?: string;
  /** `expires_in` of answers, in seconds (default 300). */
  expiresIn?: number;
  /** Which JWT header finds the signing key: `x5c`, `kid` or both (default both). */
  header?: 'x5c' | 'kid' | 'both';
  /** The actions to grant a user (undefined: anonymous) on one scope; default: what was asked, anonymous gets pull only. */
  grant?: (user: string | undefined, scope: Scope) => string[];
  /** Issue a token the registry will reject (expired beyond its 60 s leeway), while telling the client it is fresh. */
  expired?: (request: TokenRequestRecord) => boolean;
  /** Answer in place of the token service (garbage, huge bodies, errors); undefined: answer normally. */
  respond?: (request: TokenRequestRecord) => { status: number; body: string | Buffer; headers?: Record<string, string> } | undefined;
}

export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

/** One token request as the service saw it (no secrets: the user name, never the password). */
export interface TokenRequestRecord {
  method: string;
  path: string;
  service: string | undefined;
  /** The `scope` values as sent, in order. */
  scopes: string[];
  account: string | undefined;
  /** Whether an Authorization header came with it, and whose credentials checked out. */
  authorization: boolean;
  user: string | undefined;
  /** OAuth2 grant_type of a POST. */
  grant: string | undefined;
  /** The answer status. */
  status?: number;
}

export interface RunningTokenServer {
  /** `http(s)://HOST:PORT/token`: the realm. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file of the certificate of the signing key: the registry's rootcertbundle. */
  certFile: string;
  /** The CA of the HTTPS server certificate (tls only). */
  caFile?: string;
  /** `startRegistry({ token: … })` config. */
  registryConfig: { realm: string; service: string; issuer: string; rootCertBundle: string };
  requests: TokenRequestRecord[];
  /** Tokens issued (the JWTs), to check they never appear where they must not. */
  issued: string[];
  close(): Promise<void>;
}

/** Starts the token service on a free port; `close()` stops it and removes its keys. */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<RunningTokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'rxpush-token-'));
  try {
    return await startIn(dir, options);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function startIn(dir: string, options: TokenServerOptions): Promise<RunningTokenServer> {
  const service = options.service ?? 'rxpush-registry';
  const issuer = options.issuer ?? 'rxpush-token-server';
  const host = options.host ?? '127.0.0.1';
  const signing = await makeSigningKey(dir);
  const requests: TokenRequestRecord[] = [];
  const issued: string[] = [];

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ details: String(error) }));
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = req.method === 'POST' ? new URLSearchParams(Buffer.concat(chunks).toString('utf8')) : undefined;
    const record: TokenRequestRecord = {
      method: req.method ?? 'GET',
      path: url.pathname,
      service: (form ?? url.searchParams).get('service') ?? undefined,
      scopes: form ? (form.get('scope') ?? '').split(' ').filter(Boolean) : url.searchParams.getAll('scope'),
      account: url.searchParams.get('account') ?? undefined,
      authorization: req.headers.authorization !== undefined,
      user: undefined,
      grant: form?.get('grant_type') ?? undefined,
    };
    requests.push(record);
    const answer = (status: number, body: object | string | Buffer, headers: Record<string, string> = {}) => {
      record.status = status;
      const bytes = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(bytes);
    };

    if (url.pathname !== '/token') return answer(404, { details: 'not found' });
    const override = options.respond?.(record);
    if (override) return answer(override.status, override.body, override.headers);

    let user: string | undefined;
    let refreshToken: string | undefined;
    if (form) {
      const grant = form.get('grant_type');
      if (grant === 'password') {
        user = checkPassword(form.get('username') ?? '', form.get('password') ?? '');
        if (user === undefined) return answer(401, { error: 'invalid_grant', error_description: 'incorrect username or password' });
        if (form.get('access_type') === 'offline') refreshToken = `refresh-${randomUUID()}`;
      } else if (grant === 'refresh_token') {
        user = options.refreshTokens?.[form.get('refresh_token') ?? ''];
        if (user === undefined) return answer(401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
        refreshToken = form.get('refresh_token') ?? undefined;
      } else {
        return answer(400, { error: 'unsupported_grant_type' });
      }
    } else if (req.headers.authorization !== undefined) {
      const match = /^Basic (.+)$/i.exec(req.headers.authorization);
      const decoded = match ? Buffer.from(match[1] ?? '', 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      user = colon < 0 ? undefined : checkPassword(decoded.slice(0, colon), decoded.slice(colon + 1));
      if (user === undefined) return answer(401, { details: 'incorrect username or password' }, { 'www-authenticate': 'Basic realm="token"' });
    }
    record.user = user;
    if (record.service !== service) return answer(400, { details: `unknown service ${record.service ?? '(none)'}` });

    const access = record.scopes.flatMap((text) => {
      const scope = parseScope(text);
      if (scope === undefined) return [];
      const actions = (options.grant ?? defaultGrant)(user, scope);
      return actions.length > 0 ? [{ type: scope.type, name: scope.name, actions }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const expired = options.expired?.(record) === true;
    const expiresIn = options.expiresIn ?? 300;
    const claims = { access };
    const header = options.header ?? 'both';
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({
        alg: 'ES256',
        typ: 'JWT',
        ...(header !== 'x5c' && { kid: signing.keyId }),
        ...(header !== 'kid' && { x5c: [signing.certDer] }),
      })
      .setIssuer(issuer)
      .setSubject(user ?? '')
      .setAudience(service)
      .setIssuedAt(expired ? now - 7200 : now)
      .setNotBefore(expired ? now - 7200 : now - 1)
      .setExpirationTime(expired ? now - 3600 : now + expiresIn)
      .setJti(randomUUID())
      .sign(signing.privateKey);
    issued.push(jwt);
    return answer(200, {
      token: jwt,
      access_token: jwt,
      expires_in: expiresIn,
      issued_at: new Date(now * 1000).toISOString(),
      ...(refreshToken !== undefined && { refresh_token: refreshToken }),
    });
  }

  function checkPassword(user: string, password: string): string | undefined {
    return options.users?.[user] !== undefined && options.users[user] === password ? user : undefined;
  }

  let server: Server;
  let caFile: string | undefined;
  if (options.tls) {
    const tls = await makeServerCertificate(dir, host);
    caFile = tls.caFile;
    server = createHttpsServer({ cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, handler);
  } else {
    server = createHttpServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const realm = `${options.tls ? 'https' : 'http'}://${host}:${port}/token`;
  return {
    realm,
    service,
    issuer,
    certFile: signing.certFile,
    ...(caFile !== undefined && { caFile }),
    registryConfig: { realm, service, issuer, rootCertBundle: signing.certFile },
    requests,
    issued,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Authenticated users get what they ask for; anonymous ones pull only. */
function defaultGrant(user: string | undefined, scope: Scope): string[] {
  return user !== undefined ? scope.actions : scope.actions.filter((a) => a === 'pull');
}

function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: text.slice(0, first), name: text.slice(first + 1, last), actions: text.slice(last + 1).split(',').filter(Boolean) };
}

/** An EC P-256 key and a self-signed certificate of it (the registry's root bundle), with its libtrust key ID. */
async function makeSigningKey(dir: string): Promise<{ privateKey: KeyObject; certFile: string; certDer: string; keyId: string }> {
  const keyFile = join(dir, 'signing.key');
  const certFile = join(dir, 'signing.crt');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=rxpush token signer']);
  const pem = await readFile(certFile, 'utf8');
  const cert = new X509Certificate(pem);
  return {
    privateKey: createPrivateKey(await readFile(keyFile)),
    certFile,
    certDer: cert.raw.toString('base64'),
    keyId: libtrustKeyId(createPublicKey(pem)),
  };
}

/**
 * libtrust's key ID, which distribution uses for `kid`: the SHA-256 of the DER public key, cut to 240
 * bits, base32 without padding, in twelve groups of four joined by colons.
 */
export function libtrustKeyId(key: KeyObject): string {
  const hash = createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of hash) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out.match(/.{4}/g)?.join(':') ?? out;
}

/** A throwaway CA and an HTTPS certificate for `host`, for a token service behind TLS. */
async function makeServerCertificate(dir: string, host: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=rxpush token CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(p('server.ext'), `subjectAltName=IP:${host}\nextendedKeyUsage=serverAuth\n`);
  await openssl(['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${host}`]);
  await openssl(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext')]);
  return { caFile: p('ca.crt'), certFile: p('server.crt'), keyFile: p('server.key') };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    throw new Error(`openssl ${args[0]} failed in the token server helper: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { fileReason, jsonSyntaxReason, silentLogger, type Logger } from '@rxpush/core';

import { CredentialsError } from './auth-error.js';
import type { Credentials } from './credentials.js';
import { runCredentialHelper } from './run-credential-helper.js';

export interface ResolveCredentialsOptions {
  /** host[:port] of the registry, as in an image reference (`docker.io` for Docker Hub). */
  readonly registry: string;
  /** Credentials given on the command line (`--creds`, or `--username` with `--password-stdin`): used first. */
  readonly explicit?: Credentials;
  /** A config.json-format file to look in before Docker's (`--authfile`); it must exist. */
  readonly authfile?: string;
  /** The directory of Docker's config.json; default `$DOCKER_CONFIG`, else `~/.docker`. */
  readonly dockerConfigDir?: string;
  /** The environment: DOCKER_CONFIG, HOME, and the PATH credential helpers are found on (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  readonly logger?: Logger;
  /** How long a credential helper may take (default 60 s). */
  readonly helperTimeoutMs?: number;
  /** Cancels the lookup: a credential helper still running is killed, with its children. */
  readonly signal?: AbortSignal | undefined;
}

/** The parts of a Docker config.json that hold credentials. */
interface DockerConfig {
  readonly auths?: Record<string, AuthEntry | undefined>;
  readonly credsStore?: string;
  readonly credHelpers?: Record<string, string | undefined>;
}

interface AuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
  readonly registrytoken?: string;
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
/** The key Docker keeps Docker Hub's credentials under, and the server URL its helpers know it by. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

/**
 * Finds the credentials for a registry, in this order: the explicit ones; `--authfile`; Docker's
 * config.json (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), where a `credHelpers` entry
 * for the registry, else `credsStore`, runs `docker-credential-NAME get`, and `auths` holds `auth`
 * (base64 of USER:PASSWORD), `username`/`password`, `identitytoken` or `registrytoken`. Undefined:
 * none, push anonymously. Docker Hub's names (docker.io, index.docker.io, registry-1.docker.io,
 * `https://index.docker.io/v1/`) are one registry, as in Docker.
 *
 * @throws {CredentialsError} when `--authfile` is missing, a config file is not JSON, an `auth` value does not
 *   decode, or a credential helper fails.
 * @example const credentials = await resolveCredentials({ registry: 'ghcr.io' })
 */
export async function resolveCredentials(options: ResolveCredentialsOptions): Promise<Credentials | undefined> {
  const logger = (options.logger ?? silentLogger).child({ pkg: 'registry-client', part: 'credentials' });
  const found = await find(options);
  // The source names a file or flag, never a secret.
  logger.debug({ registry: options.registry, source: found?.source ?? 'none (anonymous)' }, 'credentials');
  return found;
}

async function find(options: ResolveCredentialsOptions): Promise<Credentials | undefined> {
  if (options.explicit !== undefined) return options.explicit;
  const env = options.env ?? process.env;
  if (options.authfile !== undefined) {
    const config = await readConfig(options.authfile, true);
    const found = config === undefined ? undefined : await fromConfig(config, options.authfile, options.registry, env, options);
    if (found !== undefined) return found;
  }
  const dir = options.dockerConfigDir ?? (env['DOCKER_CONFIG'] !== undefined && env['DOCKER_CONFIG'] !== '' ? env['DOCKER_CONFIG'] : join(env['HOME'] ?? homedir(), '.docker'));
  const file = join(dir, 'config.json');
  const config = await readConfig(file, false);
  return config === undefined ? undefined : fromConfig(config, file, options.registry, env, options);
}

async function readConfig(file: string, required: boolean): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    throw new CredentialsError(`cannot read the credentials file ${file}: ${fileReason(error)}; check --authfile (or log in with docker login)`, { where: file, cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // Never V8's message: it quotes the text around the error, which may be a password.
    throw new CredentialsError(`the credentials file ${file} is not valid JSON (${jsonSyntaxReason(error, text)}); fix it, or log in again with docker login`, {
      where: file,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CredentialsError(`the credentials file ${file} is not a JSON object like Docker's config.json; fix it, or log in again with docker login`, { where: file });
  }
  return json as DockerConfig;
}

async function fromConfig(
  config: DockerConfig,
  file: string,
  registry: string,
  env: NodeJS.ProcessEnv,
  { helperTimeoutMs: timeoutMs, signal }: Pick<ResolveCredentialsOptions, 'helperTimeoutMs' | 'signal'>,
): Promise<Credentials | undefined> {
  const wanted = registryKey(registry);
  const helper = matching(config.credHelpers, wanted) ?? (typeof config.credsStore === 'string' && config.credsStore !== '' ? config.credsStore : undefined);
  if (typeof helper === 'string' && helper !== '') {
    const serverUrl = wanted === 'docker.io' ? DOCKER_HUB_SERVER : registry;
    const found = await runCredentialHelper(helper, serverUrl, { configFile: file, env, ...(timeoutMs !== undefined && { timeoutMs }), ...(signal !== undefined && { signal }) });
    if (found !== undefined) return found;
  }
  const entry = matching(config.auths, wanted);
  return entry === undefined ? undefined : fromEntry(entry, file, registry);
}

/** The value under the key that names `wanted`: an exact key first, then any key that normalises to it. */
function matching<T>(record: Record<string, T | undefined> | undefined, wanted: string): T | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const keys = Object.keys(record);
  const key = keys.find((k) => k === wanted) ?? keys.find((k) => registryKey(k) === wanted);
  return key === undefined ? undefined : record[key];
}

function fromEntry(entry: AuthEntry, file: string, registry: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const source = file;
  let username = typeof entry.username === 'string' && entry.username !== '' ? entry.username : undefined;
  let password = typeof entry.password === 'string' && entry.password !== '' ? entry.password : undefined;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1 || !/^[A-Za-z0-9+/=\s]+$/.test(entry.auth)) {
      throw new CredentialsError(`the "auth" for ${registry} in ${file} is not base64 of USER:PASSWORD; log in again with docker login`, { where: file });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const identityToken = typeof entry.identitytoken === 'string' && entry.identitytoken !== '' ? entry.identitytoken : undefined;
  const registryToken = typeof entry.registrytoken === 'string' && entry.registrytoken !== '' ? entry.registrytoken : undefined;
  if (username === undefined && password === undefined && identityToken === undefined && registryToken === undefined) return undefined;
  return {
    ...(username !== undefined && { username }),
    // An identity token replaces the password: Docker keeps the password out of config.json then.
    ...(password !== undefined && identityToken === undefined && { password }),
    ...(identityToken !== undefined && { identityToken }),
    ...(registryToken !== undefined && { registryToken }),
    source,
  };
}

/**
 * A config.json key (or a registry name) as the registry it means: scheme and path dropped, lower case,
 * Docker Hub's names as `docker.io`.
 *
 * @example registryKey('https://index.docker.io/v1/') // 'docker.io'
 */
export function registryKey(key: string): string {
  const host = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]?.toLowerCase() ?? '';
  return DOCKER_HUB.has(host) ? 'docker.io' : host;
}

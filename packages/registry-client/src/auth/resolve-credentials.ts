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
  /**
   * The environment (default process.env): DOCKER_CONFIG, HOME, the PATH credential helpers are found on, and the
   * containers tools' REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR and XDG_CONFIG_HOME.
   */
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
 * Finds the credentials for a registry, in this order: the explicit ones; `--authfile` (else
 * `$REGISTRY_AUTH_FILE`, as skopeo and podman read it); Docker's config.json (`$DOCKER_CONFIG/config.json` or
 * `~/.docker/config.json`); then the auth.json that `skopeo login` and `podman login` write
 * (`$XDG_RUNTIME_DIR/containers/auth.json`, then `$XDG_CONFIG_HOME/containers/auth.json`, by default
 * `~/.config/containers/auth.json`). In each, a `credHelpers` entry for the registry, else `credsStore`, runs
 * `docker-credential-NAME get`, and `auths` holds `auth` (base64 of USER:PASSWORD), `username`/`password`,
 * `identitytoken` or `registrytoken`. Undefined: none, push anonymously. Docker Hub's names (docker.io,
 * index.docker.io, registry-1.docker.io, `https://index.docker.io/v1/`) are one registry, as in Docker.
 * auth.json's entries for one namespace (`quay.io/team`) are not used: which repository is pushed is not
 * known here, and an entry for the whole registry is.
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

/** A file credentials may be in, and how it is read. */
interface CredentialsFile {
  readonly path: string;
  /** It must exist (`--authfile`); the others may be missing. */
  readonly required: boolean;
  /** The command that writes it, for the messages about a damaged one. */
  readonly login: string;
  /** What names it, for the message about one that cannot be read (`--authfile`, `REGISTRY_AUTH_FILE`). */
  readonly namedBy?: string;
  /** auth.json: keys with a path name a namespace, not the registry (Docker's config.json has none). */
  readonly namespaced: boolean;
}

async function find(options: ResolveCredentialsOptions): Promise<Credentials | undefined> {
  if (options.explicit !== undefined) return options.explicit;
  const env = options.env ?? process.env;
  for (const file of credentialsFiles(options, env)) {
    const config = await readConfig(file);
    const found = config === undefined ? undefined : await fromConfig(config, file, options.registry, env, options);
    if (found !== undefined) return found;
  }
  return undefined;
}

function credentialsFiles(options: ResolveCredentialsOptions, env: NodeJS.ProcessEnv): CredentialsFile[] {
  const set = (name: string): string | undefined => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const home = env['HOME'] ?? homedir();
  const containers = (path: string, namedBy?: string): CredentialsFile => ({ path, required: false, login: 'podman login or skopeo login', namespaced: true, ...(namedBy !== undefined && { namedBy }) });
  const authfile = options.authfile !== undefined ? { path: options.authfile, required: true, login: 'docker login', namespaced: false, namedBy: '--authfile' } : undefined;
  const registryAuthFile = set('REGISTRY_AUTH_FILE');
  const runtimeDir = set('XDG_RUNTIME_DIR');
  return [
    ...(authfile !== undefined ? [authfile] : registryAuthFile !== undefined ? [containers(registryAuthFile, 'REGISTRY_AUTH_FILE')] : []),
    { path: join(options.dockerConfigDir ?? set('DOCKER_CONFIG') ?? join(home, '.docker'), 'config.json'), required: false, login: 'docker login', namespaced: false },
    ...(runtimeDir !== undefined ? [containers(join(runtimeDir, 'containers', 'auth.json'))] : []),
    containers(join(set('XDG_CONFIG_HOME') ?? join(home, '.config'), 'containers', 'auth.json')),
  ];
}

async function readConfig({ path: file, required, login, namedBy = '--authfile' }: CredentialsFile): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    throw new CredentialsError(`cannot read the credentials file ${file}: ${fileReason(error)}; check ${namedBy} (or log in with ${login})`, { where: file, cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // Never V8's message: it quotes the text around the error, which may be a password.
    throw new CredentialsError(`the credentials file ${file} is not valid JSON (${jsonSyntaxReason(error, text)}); fix it, or log in again with ${login}`, {
      where: file,
    });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CredentialsError(`the credentials file ${file} is not a JSON object like Docker's config.json; fix it, or log in again with ${login}`, { where: file });
  }
  return json as DockerConfig;
}

async function fromConfig(
  config: DockerConfig,
  { path: file, login, namespaced }: CredentialsFile,
  registry: string,
  env: NodeJS.ProcessEnv,
  { helperTimeoutMs: timeoutMs, signal }: Pick<ResolveCredentialsOptions, 'helperTimeoutMs' | 'signal'>,
): Promise<Credentials | undefined> {
  const wanted = registryKey(registry);
  const helper = matching(config.credHelpers, wanted, namespaced) ?? (typeof config.credsStore === 'string' && config.credsStore !== '' ? config.credsStore : undefined);
  if (typeof helper === 'string' && helper !== '') {
    const serverUrl = wanted === 'docker.io' ? DOCKER_HUB_SERVER : registry;
    const found = await runCredentialHelper(helper, serverUrl, { configFile: file, env, ...(timeoutMs !== undefined && { timeoutMs }), ...(signal !== undefined && { signal }) });
    if (found !== undefined) return found;
  }
  const entry = matching(config.auths, wanted, namespaced);
  return entry === undefined ? undefined : fromEntry(entry, file, registry, login);
}

/**
 * The value under the key that names `wanted`: an exact key first, then any key that normalises to it. With
 * `namespaced`, a key with a path and no scheme (`quay.io/team`) names a namespace and is passed over.
 */
function matching<T>(record: Record<string, T | undefined> | undefined, wanted: string, namespaced: boolean): T | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const keys = Object.keys(record).filter((key) => !namespaced || key.includes('://') || !key.includes('/'));
  const key = keys.find((k) => k === wanted) ?? keys.find((k) => registryKey(k) === wanted);
  return key === undefined ? undefined : record[key];
}

function fromEntry(entry: AuthEntry, file: string, registry: string, login: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const source = file;
  let username = typeof entry.username === 'string' && entry.username !== '' ? entry.username : undefined;
  let password = typeof entry.password === 'string' && entry.password !== '' ? entry.password : undefined;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1 || !/^[A-Za-z0-9+/=\s]+$/.test(entry.auth)) {
      throw new CredentialsError(`the "auth" for ${registry} in ${file} is not base64 of USER:PASSWORD; log in again with ${login}`, { where: file });
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

/**
 * Starts a private Docker Engine (Debian's docker.io) for end-to-end tests: its own
 * data root, exec root, socket and config, vfs storage and no networking changes, so
 * it never touches a system daemon. dockerd starts its own containerd under the exec root.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';

import { freePort } from './registry.ts';

const DOCKERD = '/usr/sbin/dockerd';
// Debian's client, matching the daemon's API version (another `docker` may be first on PATH).
const DOCKER = '/usr/bin/docker';

export interface DockerRunOptions {
  /** Written to the command's stdin (e.g. a tar for `docker load`). */
  input?: string | Buffer;
  /** Fail after this long (default 5 minutes). */
  timeoutMs?: number;
}

/** A loopback TCP listener with TLS that checks client certificates (`--tlsverify`), besides the socket. */
export interface DockerdTcpTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface StartDockerdOptions {
  startTimeoutMs?: number;
  storageDriver?: 'vfs' | 'overlay2';
  /** Also listen on `tcp://127.0.0.1:PORT` (a free port) with TLS, as `tcpHost` says. */
  tcpTls?: DockerdTcpTls;
}

export interface RunningDockerd {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  host: string;
  /** `tcp://127.0.0.1:PORT` when started with `tcpTls`. */
  tcpHost?: string;
  socket: string;
  dataRoot: string;
  /** A DOCKER_CONFIG directory of its own (empty config.json), so no user credentials leak in. */
  configDir: string;
  /**
   * The daemon's libtrust key (`key.json`, a JWK with its `kid`), which dockerd 20.10 creates on start: the key
   * Docker's schema 1 push signed with. Kept in the daemon's own dir instead of the host's /etc/docker/key.json.
   */
  trustKeyFile: string;
  logFile: string;
  /** Runs the docker CLI against this daemon; rejects with docker's stderr on a non-zero exit. */
  docker(args: string[], opts?: DockerRunOptions): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export type StartDockerdResult = RunningDockerd | { skipped: string };

const live = new Set<{ child: ChildProcess; dir: string; execRoot: string }>();
let exitHookInstalled = false;

function containerdPid(execRoot: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(execRoot, 'containerd', 'containerd.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function killPid(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const { child, dir, execRoot } of live) {
      killPid(child.pid, 'SIGKILL');
      killPid(containerdPid(execRoot), 'SIGKILL');
      // dockerd bind-mounts its data root, so a killed daemon can leave it busy (EBUSY); a throw here
      // would skip every later 'exit' handler (e.g. the ones that stop registries).
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Left behind; nothing more can be done synchronously at exit.
      }
    }
  });
}

/**
 * Starts dockerd with everything under a fresh temp dir and resolves once its API
 * answers `/_ping`; resolves `{ skipped }` only when dockerd cannot run here at all.
 *
 * @example
 * const engine = await startDockerd();
 * if ('skipped' in engine) return t.skip(engine.skipped);
 * try { await engine.docker(['pull', `${registry.host}/x:y`]); } finally { await engine.stop(); }
 */
export async function startDockerd(options: StartDockerdOptions = {}): Promise<StartDockerdResult> {
  if (process.getuid?.() !== 0) return { skipped: 'dockerd needs root, and this process is not root' };
  for (const bin of [DOCKERD, DOCKER]) {
    if (!existsSync(bin)) return { skipped: `${bin} is missing: run "node tools/setup.mjs" (installs the Debian package docker.io)` };
  }
  // Short paths: unix socket paths (containerd's lives under the exec root) are limited to 107 bytes.
  const dir = await mkdtemp(existsSync('/tmp') ? '/tmp/rxd-' : join(process.cwd(), '.rxd-'));
  try {
    return await startIn(dir, options.startTimeoutMs ?? 60_000, options.storageDriver ?? 'vfs', options.tcpTls);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startIn(dir: string, timeoutMs: number, storageDriver: 'vfs' | 'overlay2', tcpTls: DockerdTcpTls | undefined): Promise<RunningDockerd> {
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'x');
  const socket = join(dir, 'docker.sock');
  const configDir = join(dir, 'cli');
  const logFile = join(dir, 'dockerd.log');
  const daemonJson = join(dir, 'daemon.json');
  const trustKeyFile = join(dir, 'key.json');
  await Promise.all([mkdir(dataRoot), mkdir(execRoot), mkdir(configDir)]);
  // Our own daemon config, so /etc/docker/daemon.json cannot conflict with our flags. dockerd 20.10 takes the
  // key path only from its config file; without it the daemon writes (or reads) the host's /etc/docker/key.json.
  await writeFile(daemonJson, `${JSON.stringify({ 'deprecated-key-path': trustKeyFile })}\n`);
  await writeFile(join(configDir, 'config.json'), '{}\n');

  const args = [
    '--config-file', daemonJson,
    // vfs works everywhere; overlay2 (for docker-root: tests) needs a kernel and file system that allow overlay mounts.
    '--storage-driver', storageDriver,
    // Leave the host's firewall, forwarding sysctl and bridges alone.
    '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
    // Docker already treats loopback registries as insecure; saying so keeps that explicit.
    '--insecure-registry', '127.0.0.0/8',
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'dockerd.pid'),
    '--host', `unix://${socket}`,
  ];
  const tcpHost = tcpTls !== undefined ? `tcp://127.0.0.1:${await freePort()}` : undefined;
  if (tcpTls !== undefined) {
    args.push('--host', tcpHost!, '--tlsverify', '--tlscacert', tcpTls.caFile, '--tlscert', tcpTls.certFile, '--tlskey', tcpTls.keyFile);
  }
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('DOCKER_') && key !== 'CONTAINERD_ADDRESS'),
  );
  const logFd = openSync(logFile, 'a');
  const child = spawn(DOCKERD, args, { stdio: ['ignore', logFd, logFd], env });
  closeSync(logFd);
  const entry = { child, dir, execRoot };
  live.add(entry);
  installExitHook();

  const stopDaemon = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    // dockerd stops its containerd on a clean exit; after a SIGKILL it would be orphaned.
    killPid(containerdPid(execRoot), 'SIGKILL');
    live.delete(entry);
  };

  try {
    await waitForPing(socket, child, logFile, timeoutMs);
  } catch (err) {
    await stopDaemon();
    throw err;
  }

  const runEnv = { ...env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: configDir };
  let stopped: Promise<void> | undefined;
  return {
    host: `unix://${socket}`,
    ...(tcpHost !== undefined && { tcpHost }),
    socket,
    dataRoot,
    configDir,
    trustKeyFile,
    logFile,
    docker: (dockerArgs, opts = {}) => runDocker(dockerArgs, runEnv, opts),
    stop() {
      stopped ??= (async () => {
        await stopDaemon();
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

function runDocker(args: string[], env: NodeJS.ProcessEnv, opts: DockerRunOptions): Promise<{ stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = execFile(
      DOCKER,
      args,
      { env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 300_000 },
      (err, stdout, stderr) => {
        if (err) fail(new Error(`docker ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
        else ok({ stdout, stderr });
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

async function waitForPing(socket: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  while (Date.now() < deadline && !exited) {
    if (existsSync(socket) && (await ping(socket))) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const log = await readFile(logFile, 'utf8').catch(() => '(no log)');
  throw new Error(
    `dockerd did not answer /_ping on ${socket} ${exited ? `(it ${exited})` : `within ${timeoutMs} ms`}; its log (${logFile}):\n${log.slice(-4000)}`,
  );
}

function ping(socket: string): Promise<boolean> {
  return new Promise((ok) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      ok(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => ok(false));
    req.end();
  });
}

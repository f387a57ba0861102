/**
 * The CLI bundle's stand-ins for other packages' modules (tools/bundle/*.cjs, wired by tools/bundle-cli.mjs):
 * each must behave as the module it stands in for, and load it only when it is needed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';

const require = createRequire(import.meta.url);
const root = join(import.meta.dirname, '..');
/** What the test needs of pino (the root package does not depend on it; packages/cli does). */
interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: object): Logger;
}
type PinoFunction = ((options: object, destination?: unknown) => Logger) & { destination(options: object): unknown };
interface Pino {
  pino: PinoFunction;
  destination(options: object): unknown;
}
const realPino = createRequire(join(root, 'packages', 'cli', 'package.json'))('pino') as Pino;
const { lazyPino } = require(join(root, 'tools', 'bundle', 'lazy-pino.cjs')) as { lazyPino: (load: () => Pino) => PinoFunction };

/** A sink that keeps each line pino writes, parsed, without the fields that differ from run to run. */
function lines(): { sink: Writable; written: () => object[] } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      done();
    },
  });
  const written = () =>
    text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const { time: _time, pid: _pid, hostname: _hostname, ...rest } = JSON.parse(line) as Record<string, unknown>;
        return rest;
      });
  return { sink, written };
}

/** What a command does with its logger: children per package, lines at several levels, a secret to redact. */
const BOOM = new Error('boom');
function exercise(logger: Logger): void {
  const child = logger.child({ pkg: 'registry-client' });
  child.debug({ url: 'https://r.example/v2/' }, 'request');
  child.info({ digest: 'sha256:ab' }, 'blob checked');
  child.warn({ headers: { authorization: 'Bearer secret' } }, 'retrying');
  child.child({ part: 'auth' }).error({ err: BOOM }, 'token refused');
  logger.warn({ password: 'hunter2' }, 'top level');
}

describe('tools/bundle/lazy-pino.cjs', () => {
  const REDACT = ['authorization', '*.authorization', 'headers.authorization', 'password', '*.password'];

  for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const) {
    it(`writes at level ${level} exactly the lines pino writes, redacted alike`, () => {
      const real = lines();
      exercise(realPino.pino({ level, redact: REDACT }, real.sink));
      const lazy = lines();
      exercise(lazyPino(() => realPino)({ level, redact: REDACT }, lazy.sink));
      assert.deepEqual(lazy.written(), real.written());
      if (level !== 'silent' && level !== 'error') assert.ok(real.written().length > 0, 'the comparison compares something');
    });
  }

  it('does not load pino while nothing reaches the level, and loads it once for the first line that does', () => {
    let loads = 0;
    const out = lines();
    const logger = lazyPino(() => {
      loads++;
      return realPino;
    })({ level: 'warn', redact: REDACT }, out.sink);
    const child = logger.child({ pkg: 'blob-checker' });
    child.debug({ digest: 'sha256:ab' }, 'checked');
    child.info({}, 'fine');
    assert.equal(loads, 0, 'a push at the default level that logs nothing never loads pino');
    child.warn({ path: '/cache' }, 'cache given up');
    child.error({}, 'and worse');
    assert.equal(loads, 1);
    assert.deepEqual(out.written(), [
      { level: 40, pkg: 'blob-checker', path: '/cache', msg: 'cache given up' },
      { level: 50, pkg: 'blob-checker', msg: 'and worse' },
    ]);
  });

  it("opens pino's destination only with the logger, with the options it was given", () => {
    const asked: unknown[] = [];
    const out = lines();
    const fake = { ...realPino, destination: (options: unknown) => (asked.push(options), out.sink) } as unknown as Pino;
    const pino = lazyPino(() => fake);
    const logger = pino({ level: 'info' }, pino.destination({ dest: 2, sync: true }));
    assert.deepEqual(asked, []);
    logger.info({ a: 1 }, 'hello');
    assert.deepEqual(asked, [{ dest: 2, sync: true }]);
    assert.deepEqual(out.written(), [{ level: 30, a: 1, msg: 'hello' }]);
  });
});

describe('tools/bundle/undici-http.cjs', () => {
  const shim = join(root, 'tools', 'bundle', 'undici-http.cjs');
  /** What the shim and node:http say, from a new process started as the arguments say (the shim reads its options). */
  function answers(nodeArgs: string[], env: Record<string, string> = {}): { shim: number; http: number; httpLoaded: boolean } {
    const script = `const shim = require(${JSON.stringify(shim)}); const size = shim.maxHeaderSize; const httpLoaded = process.moduleLoadList.includes('NativeModule http');
process.stdout.write(JSON.stringify({ shim: size, http: require('node:http').maxHeaderSize, httpLoaded }));`;
    const result = spawnSync(process.execPath, [...nodeArgs, '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as { shim: number; http: number; httpLoaded: boolean };
  }

  it("gives yargs node:assert's strictEqual and notStrictEqual, without loading node:assert", () => {
    const lite = require(join(root, 'tools', 'bundle', 'yargs-assert.cjs')) as Pick<typeof import('node:assert'), 'strictEqual' | 'notStrictEqual'>;
    const real = require('node:assert') as typeof import('node:assert');
    for (const [actual, expected] of [[1, 1], ['a', 'a'], [Number.NaN, Number.NaN], [0, -0], [1, '1'], [undefined, null]] as const) {
      const outcome = (check: (a: unknown, b: unknown) => void) => {
        try {
          check(actual, expected);
          return 'passed';
        } catch (error) {
          return `${(error as Error).name} ${(error as { code?: string }).code}`;
        }
      };
      assert.equal(outcome(lite.strictEqual), outcome(real.strictEqual), `strictEqual(${String(actual)}, ${String(expected)})`);
      assert.equal(outcome(lite.notStrictEqual), outcome(real.notStrictEqual), `notStrictEqual(${String(actual)}, ${String(expected)})`);
    }
    assert.throws(() => lite.strictEqual(1, 2, 'yargs says why'), { name: 'AssertionError', message: 'yargs says why' });
    const result = spawnSync(process.execPath, [join(root, 'packages', 'cli', 'bin', 'rxpush.js'), '--help'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent("process.on('exit',()=>process.stderr.write('MODULES '+process.moduleLoadList.join(',')))")}` },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /NativeModule assert(,|$)/, 'node:assert is not loaded for --help');
  });

  it("gives node:http's maxHeaderSize without loading node:http", () => {
    assert.deepEqual(answers([]), { shim: 16 * 1024, http: 16 * 1024, httpLoaded: false });
  });

  it('gives the size of --max-http-header-size, given on the command line or in NODE_OPTIONS', () => {
    assert.deepEqual(answers(['--max-http-header-size=1000']), { shim: 1000, http: 1000, httpLoaded: true });
    assert.deepEqual(answers([], { NODE_OPTIONS: '--max-http-header-size=2000' }), { shim: 2000, http: 2000, httpLoaded: true });
  });

  it('names a class that no stream is an instance of', () => {
    const { IncomingMessage } = require(shim) as { IncomingMessage: new () => object };
    assert.notEqual(IncomingMessage, (require('node:http') as typeof import('node:http')).IncomingMessage);
  });
});

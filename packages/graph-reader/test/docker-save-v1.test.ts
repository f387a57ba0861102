import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import type { Digest } from '@rxpush/core';

import { compactJson, goObject, goString, goTime, rawMembers, versionLessThan } from '../src/docker-archive/go-json.js';
import { chainIds } from '../src/shared/chain-ids.js';
import { legacyConfig, parseV1LayerJson, v1LayerIndex } from '../src/docker-archive/save-v1.js';

// Written by Debian's docker 20.10 `docker save` for a 7-layer image whose last layer repeats the first.
const DIFF_IDS = [
  'sha256:b71d517a5f154655d50412f1732d168b0d66f4b6201558c91f7e69a845fa06a2',
  'sha256:2fa7bf9f059ec062c8cf24b171fccdbb4a0350591290640a79ea37de708a001d',
  'sha256:5b03b152c4568d70ae6c01eace77f183b148cbae613ab4b384c11e2a6e9fe234',
  'sha256:e20d416d52523598f6202e94824729141d786a2e1f8d9613dafdc4fe39fb4414',
  'sha256:3356ea597c620b3ba03c1138626d0d25f9e3bb1ff2fad8491391ccdaa407e22a',
  'sha256:d7cd560ddc2e391e7194ac7e295cf8391272290601eb4a668fec46dc79cafa85',
  'sha256:b71d517a5f154655d50412f1732d168b0d66f4b6201558c91f7e69a845fa06a2',
] as Digest[];
const EMPTY_CONTAINER_CONFIG =
  '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}';
const BASE_JSON = `{"id":"3d31592bdd3a690fd6c462548004c2a9bab8335a2082393c1e499d0f2011a78e","created":"1970-01-01T00:00:00Z","container_config":${EMPTY_CONTAINER_CONFIG},"os":"linux"}`;
const FIFTH_JSON = `{"id":"42e57566994d0b60c40a184b9fcfa516c44545a84c39d2aec84e2aae48fb1943","parent":"ba141b53ce6603dc263eb2c39e3f8125a574aac39009073fb3d8e1029df24ecf","created":"1970-01-01T00:00:00Z","container_config":${EMPTY_CONTAINER_CONFIG},"os":"linux"}`;
const TOP_JSON = `{"id":"b28bd0e95c2a8cf8dc0ecb51f217f6296c373404276e6e8658a5273271cf5ea8","parent":"2efed057adcb27be885a50f1d80bf95d6bd893a33e595fc0d7a4e6cc068ab8de","created":"2020-01-01T00:00:00Z","container_config":${EMPTY_CONTAINER_CONFIG},"config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"Image":"","Volumes":null,"WorkingDir":"/","Entrypoint":null,"OnBuild":null,"Labels":null},"architecture":"amd64","os":"linux"}`;

const layerJson = (text: string) => parseV1LayerJson(Buffer.from(text));

describe("Docker's v1 layer IDs", () => {
  it('computes chain IDs from diff IDs', () => {
    const chain = chainIds(DIFF_IDS.slice(0, 2));
    assert.equal(chain[0], DIFF_IDS[0]);
    assert.equal(chain[1], `sha256:${createHash('sha256').update(`${DIFF_IDS[0]} ${DIFF_IDS[1]}`).digest('hex')}`);
  });

  it('tells which layer a directory of a real docker save holds, from its json alone', () => {
    const chain = chainIds(DIFF_IDS);
    assert.equal(v1LayerIndex(layerJson(BASE_JSON), chain), 0);
    assert.equal(v1LayerIndex(layerJson(FIFTH_JSON), chain), 4);
    // The top layer's ID covers its os; the others' do not.
    assert.equal(v1LayerIndex(layerJson(TOP_JSON), chain), 6);
  });

  it('finds no layer for a json of another image', () => {
    assert.equal(v1LayerIndex(layerJson(FIFTH_JSON), chainIds(DIFF_IDS.slice(1))), undefined);
    assert.equal(v1LayerIndex(layerJson(BASE_JSON.replace('1970', '1971')), chainIds(DIFF_IDS)), undefined);
  });

  it('refuses layer json whose id or parent is not a v1 ID', () => {
    assert.throws(() => layerJson('{"id":"../etc"}'), /has "id" "..\/etc", not a layer ID/);
    assert.throws(() => layerJson('{"parent":"x"}'), /has "parent" "x", not a layer ID/);
    assert.throws(() => layerJson('[1]'), /is not a JSON object/);
    assert.throws(() => layerJson('{'), /is not JSON/);
  });
});

describe("Go's JSON, as Docker's IDs depend on it", () => {
  it('splits an object into raw member texts', () => {
    const members = rawMembers(' {"a" : [1, {"b":"}"}], "c":"x\\"y", "d":null, "a2":-1.5e3 } ');
    assert.deepEqual([...members], [
      ['a', '[1, {"b":"}"}]'],
      ['c', '"x\\"y"'],
      ['d', 'null'],
      ['a2', '-1.5e3'],
    ]);
  });

  it('compacts raw values and escapes HTML characters as json.Marshal does', () => {
    assert.equal(compactJson('{ "a" : "x <y> & z",\n "b": [1, 2] }'), '{"a":"x \\u003cy\\u003e \\u0026 z","b":[1,2]}');
    assert.equal(goString('a"b\\c\n\t\u0001<\u2028'), '"a\\"b\\\\c\\n\\t\\u0001\\u003c\\u2028"');
    assert.equal(goObject(new Map([['b', '1'], ['a', ' "x" ']])), '{"a":"x","b":1}');
  });

  it('writes times back as Go does', () => {
    assert.equal(goTime('2020-01-01T00:00:00.500000000Z'), '"2020-01-01T00:00:00.5Z"');
    assert.equal(goTime('2020-01-01T00:00:00.000Z'), '"2020-01-01T00:00:00Z"');
    assert.equal(goTime('2020-01-01T01:00:00+00:00'), '"2020-01-01T01:00:00Z"');
    assert.equal(goTime('2020-01-01T01:00:00+02:00'), '"2020-01-01T01:00:00+02:00"');
    assert.equal(goTime(undefined), '"0001-01-01T00:00:00Z"');
    assert.equal(goTime('yesterday'), undefined);
  });

  it("compares versions like Docker's versions.LessThan", () => {
    assert.equal(versionLessThan('1.8.2', '1.8.3'), true);
    assert.equal(versionLessThan('1.10.0', '1.8.3'), false);
    assert.equal(versionLessThan('', '1.8.3'), true);
    assert.equal(versionLessThan('1.8.3', '1.8.3'), false);
  });
});

describe('the config docker load makes for a legacy image', () => {
  const base = '{"id":"' + 'a'.repeat(64) + '","created":"2020-01-01T00:00:00.10Z","container_config":{"Cmd":["/bin/sh","-c","#(nop) ADD a <b>"]},"author":"me","docker_version":"1.9.1","os":"linux","Size":5}';
  const top =
    '{"id":"' + 'b'.repeat(64) + '","parent":"' + 'a'.repeat(64) + '","created":"2020-01-02T00:00:00Z","container_config":{"Cmd":"echo hi"},"config":{"Cmd":["sh"]},"comment":"c","docker_version":"1.9.1","architecture":"amd64","os":"linux","Size":7,"throwaway":true}';
  const diffIds = [`sha256:${'1'.repeat(64)}`, `sha256:${'2'.repeat(64)}`] as Digest[];

  it('is the top json without v1 fields, plus rootfs and history, keys sorted', () => {
    const config = legacyConfig([layerJson(base), layerJson(top)], diffIds).toString();
    assert.equal(
      config,
      '{"architecture":"amd64","comment":"c","config":{"Cmd":["sh"]},"container_config":{"Cmd":"echo hi"},"created":"2020-01-02T00:00:00Z","docker_version":"1.9.1",' +
        '"history":[{"created":"2020-01-01T00:00:00.1Z","author":"me","created_by":"/bin/sh -c #(nop) ADD a \\u003cb\\u003e"},{"created":"2020-01-02T00:00:00Z","created_by":"echo hi","comment":"c"}],' +
        `"os":"linux","rootfs":{"type":"layers","diff_ids":["${diffIds[0]}","${diffIds[1]}"]}}`,
    );
  });

  it('keeps only the fields of Docker\'s V1Image for JSON older than Docker 1.8.3', () => {
    const old = top.replace(/"docker_version":"1.9.1",/, '').replace('"comment":"c"', '"comment":"c","unknown":1');
    const config = JSON.parse(legacyConfig([layerJson(old)], diffIds.slice(0, 1)).toString());
    assert.equal(config.unknown, undefined);
    assert.equal(config.comment, 'c');
  });

  it('refuses a created time Docker cannot read, naming the layer', () => {
    assert.throws(() => legacyConfig([layerJson(base.replace('2020-01-01T00:00:00.10Z', 'soon'))], diffIds.slice(0, 1)), /layer a{64} has "created" "soon", not an RFC 3339 time/);
  });
});

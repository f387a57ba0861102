import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { checkImagePlatform, parsePlatform } from '../src/shared/platform.js';

const config = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('checkImagePlatform (--platform for a source that names one image)', () => {
  const arm64v8 = config({ os: 'linux', architecture: 'arm64', variant: 'v8', rootfs: { type: 'layers', diff_ids: [] } });

  it('takes an image of the platform asked for, the variant only when one is asked for', () => {
    checkImagePlatform(arm64v8, parsePlatform('linux/arm64'), 'oci:./image:1');
    checkImagePlatform(arm64v8, parsePlatform('linux/arm64/v8'), 'oci:./image:1');
  });

  it('refuses another os, architecture or variant, naming both platforms', () => {
    assert.throws(() => checkImagePlatform(arm64v8, parsePlatform('linux/amd64'), 'oci:./image:1'), {
      code: 'SOURCE_NOT_FOUND',
      message: 'oci:./image:1 is one image, for linux/arm64/v8, not for linux/amd64 (--platform); drop --platform to take it as it is',
    });
    assert.throws(() => checkImagePlatform(arm64v8, parsePlatform('linux/arm64/v7'), 'oci:./image:1'), { message: /for linux\/arm64\/v8, not for linux\/arm64\/v7/ });
    assert.throws(() => checkImagePlatform(arm64v8, parsePlatform('windows/arm64'), 'oci:./image:1'), { message: /not for windows\/arm64/ });
  });

  it('takes a config that names no platform as it is: an artifact\'s, one without os, or not JSON', () => {
    const amd64 = parsePlatform('linux/amd64');
    checkImagePlatform(config({}), amd64, 'oci:./artifact');
    checkImagePlatform(config({ architecture: 'arm64' }), amd64, 'oci:./image');
    checkImagePlatform(config({ os: '', architecture: '' }), amd64, 'oci:./image');
    checkImagePlatform(config(null), amd64, 'oci:./image');
    checkImagePlatform(Buffer.from('not json'), amd64, 'oci:./artifact');
  });
});

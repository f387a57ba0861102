import { InvalidResponseError } from '@rxpush/core';

import { parseJson } from './manifests.js';
import { pull, readAnswer, type Requester } from './requester.js';
import { header, type SendResponse } from './send.js';
import type { RequestOptions } from './types.js';
import { checkRepository, redactUrl, resolveLocation } from './urls.js';

/** One page of a tag list. */
const TAG_PAGE_LIMIT = 4 * 1024 * 1024;
const MAX_TAG_PAGES = 10_000;

/** {@link RegistryClient.listTags}, over the client's requester. */
export async function listTags(r: Requester, repository: string, opts: RequestOptions = {}): Promise<string[]> {
  const repo = checkRepository(repository);
  const tags: string[] = [];
  const origin = await r.origin(opts.signal);
  let url: URL | undefined = new URL(`/v2/${repo}/tags/list`, origin);
  const seen = new Set<string>();
  while (url !== undefined && !seen.has(url.href) && seen.size < MAX_TAG_PAGES) {
    seen.add(url.href);
    const res: SendResponse = await r.send({ method: 'GET', url, scopes: [pull(repo)], ok: [200], signal: opts.signal, onRetry: opts.onRetry, budget: opts.budget });
    const { bytes, complete } = await readAnswer(r, res, TAG_PAGE_LIMIT, opts.signal);
    const page = complete ? parseJson(bytes) : undefined;
    const list = (page as { tags?: unknown } | undefined)?.tags;
    if (page === undefined || (list !== null && list !== undefined && !Array.isArray(list))) {
      throw new InvalidResponseError({ method: 'GET', url: redactUrl(res.url), status: res.status, problem: 'with a body that is not a tag list; is this a registry?' });
    }
    for (const tag of list ?? []) if (typeof tag === 'string') tags.push(tag);
    url = nextLink(header(res.headers, 'link'), res);
  }
  return tags;
}

/** The `rel="next"` target of a Link header, resolved against the page it came with. */
function nextLink(link: string | undefined, res: SendResponse): URL | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match !== null && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(match[2] ?? '')) return resolveLocation(match[1] ?? '', res.url, { method: 'GET', status: res.status, header: 'Link' });
  }
  return undefined;
}

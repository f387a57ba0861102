/**
 * Token scopes (`repository:NAME:push,pull`), normalised so that the same access asked in another
 * order or split differently is the same cache key.
 */

/** resource (`type:name`) → actions. */
type ScopeSet = Map<string, Set<string>>;

function parse(scopes: Iterable<string>): ScopeSet {
  const set: ScopeSet = new Map();
  for (const scope of scopes) {
    // type:name:actions, where the name may itself hold colons (a registry-qualified name) but the type and actions do not.
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    if (first < 0 || last === first) {
      set.set(scope, set.get(scope) ?? new Set());
      continue;
    }
    const resource = scope.slice(0, last);
    const actions = set.get(resource) ?? new Set<string>();
    for (const action of scope.slice(last + 1).split(',')) if (action !== '') actions.add(action);
    set.set(resource, actions);
  }
  return set;
}

/** The scopes merged per resource, actions sorted, resources sorted: a stable form. */
export function normalizeScopes(scopes: Iterable<string>): string[] {
  return [...parse(scopes)]
    .map(([resource, actions]) => (actions.size === 0 ? resource : `${resource}:${[...actions].sort().join(',')}`))
    .sort();
}

/** The cache key of a scope set. */
export function scopeKey(scopes: Iterable<string>): string {
  return normalizeScopes(scopes).join(' ');
}

/** True when every action `wanted` asks for is in `held` (both normalised or not). */
export function coversScopes(held: Iterable<string>, wanted: Iterable<string>): boolean {
  const have = parse(held);
  for (const [resource, actions] of parse(wanted)) {
    const got = have.get(resource);
    if (got === undefined) return false;
    for (const action of actions) if (!got.has(action)) return false;
  }
  return true;
}

/** True for a scope the token spec describes (`type:name:actions`), so a registry's hint can be trusted to be one. */
export function isScope(value: string): boolean {
  return /^[a-z0-9]+(?:\([a-z0-9]+\))?:[^\s:][^\s]*:[a-z*]+(?:,[a-z*]+)*$/i.test(value);
}

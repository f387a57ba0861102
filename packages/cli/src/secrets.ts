/**
 * The secrets this run was given (passwords, key passphrases, and the Basic credentials made of them). rxpush never
 * puts them in a message itself; this is for text it passes on from elsewhere: a token service or registry whose
 * error echoes the password it was sent, a proxy page that shows the Authorization header. Whatever is printed
 * (failures, logs) goes through {@link hideSecrets} first.
 */
const secrets = new Set<string>();

/** Shorter values would be found inside ordinary words; a password that short is no secret anyway. */
const MIN_LENGTH = 4;

/** Remembers a secret the run was given, so that no output shows it. */
export function keepSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= MIN_LENGTH) secrets.add(value);
}

/** Remembers a user name and password, and the base64 of `user:password` that Basic auth sends. */
export function keepCredentials(username: string, password: string): void {
  keepSecret(password);
  keepSecret(Buffer.from(`${username}:${password}`).toString('base64'));
}

/**
 * `text` with every secret the run was given replaced by `***`.
 *
 * @example keepSecret('hunter2-pw'); hideSecrets('invalid password hunter2-pw') // 'invalid password ***'
 */
export function hideSecrets(text: string): string {
  let hidden = text;
  for (const secret of secrets) if (hidden.includes(secret)) hidden = hidden.split(secret).join('***');
  return hidden;
}

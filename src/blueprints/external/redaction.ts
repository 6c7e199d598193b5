// A provisioner's words end up in resource logs and lease reasons, which many more people read
// than can see a blueprint's token. A provisioner that echoes what it was sent ("bad token: Bearer
// ...") must not publish the token: every text it supplied is passed through here first.

export const REDACTED = '***';

/** `text` with every occurrence of `token` (as sent, and as escaped inside a JSON string) replaced. */
export function withoutToken(text: string, token: string | undefined): string {
  if (!token) return text;
  let result = text.split(token).join(REDACTED);
  const escaped = JSON.stringify(token).slice(1, -1);
  if (escaped !== token) result = result.split(escaped).join(REDACTED);
  return result;
}

/** `text` with the user name and password of any URL in it replaced (fetch quotes the URL it refuses). */
export function withoutUrlCredentials(text: string): string {
  return text.replace(/\/\/[^\s/?#@]*@/g, `//${REDACTED}@`);
}

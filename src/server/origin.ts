import { isLoopback } from '../auth/authenticate.js';

/** A request's headers, by lower-case name, whichever form the transport keeps them in. */
export type HeaderOf = (name: string) => string | undefined;

export function fetchHeaders(headers: Headers): HeaderOf {
  return (name) => headers.get(name) ?? undefined;
}

export function nodeHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): HeaderOf {
  return (name) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
}

/** The host part of a Host header (`127.0.0.1:4000`, `[::1]:4000`, `localhost`). */
function hostName(host: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed) return bracketed[1]!;
  return host.replace(/:\d+$/, '');
}

/**
 * Why a request without a token may not act as the local admin, or null when it may.
 *
 * The local admin exists for the people and programs on this machine: curl, the CLI, this
 * server's own pages. A web page from anywhere else that the operator happens to open can reach
 * 127.0.0.1 too, and a browser sends its requests (form posts, fetches, WebSockets, which CORS
 * does not guard) without asking; acting as admin for them would let any site create tokens or
 * run commands. Browsers say where a request comes from (Origin, Sec-Fetch-Site), and a page that
 * reaches this server through a DNS name of its own (rebinding) shows that name in Host, so:
 * the Host must be a loopback name, and a browser's request must come from this server's own
 * origin. Clients that are not browsers send neither header and are not affected.
 */
export function anonymousRefusal(header: HeaderOf): string | null {
  const host = header('host');
  if (host !== undefined && !isLoopback(hostName(host)))
    return `requests to this server by the name "${host}" need an API token: the local admin answers only to a loopback name such as 127.0.0.1`;
  const origin = header('origin');
  if (origin !== undefined && (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`)))
    return `requests from another web page (${origin}) need an API token: the local admin acts only for this server's own pages and for programs that are not browsers`;
  const site = header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    return `requests from another web page (Sec-Fetch-Site: ${site}) need an API token: the local admin acts only for this server's own pages and for programs that are not browsers`;
  return null;
}

import type { DrydockPubSub } from '../events/pubsub.js';

/** The token a connection authenticated with: its id (for revocation) and when it expires. */
export type SessionToken = { id: number; expiresAt: Date | null };

/** Why a session ends, as its transport tells the client. */
export type SessionEnd = { code: 'UNAUTHENTICATED' | 'SHUTTING_DOWN'; message: string };

/** setTimeout's longest delay; a later expiry is waited for in steps of it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The long-lived connections of this process (graphql-ws sockets, SSE streams), so that they end
 * when the token they authenticated with is revoked or expires, and at shutdown. A token is
 * checked when a connection opens and on each new operation; a subscription already running
 * would otherwise go on delivering events for as long as its socket stays open.
 */
export class OpenSessions {
  private readonly byToken = new Map<number, Set<(end: SessionEnd) => void>>();
  private readonly all = new Set<(end: SessionEnd) => void>();
  private readonly revocations: AsyncIterator<unknown> & { return?: () => Promise<unknown> };

  constructor(pubsub: DrydockPubSub) {
    // Revocations reach every process through the events between processes (NOTIFY or Redis).
    this.revocations = pubsub.subscribe('token:revoked')[Symbol.asyncIterator]();
    void this.follow();
  }

  private async follow(): Promise<void> {
    for (;;) {
      const next = await this.revocations.next();
      if (next.done) return;
      const tokenId = Number(next.value);
      for (const end of [...(this.byToken.get(tokenId) ?? [])])
        end({ code: 'UNAUTHENTICATED', message: 'Not authenticated: this API token was revoked.' });
    }
  }

  /** Holds a session until the returned release; `end` is called at most once, and releases it. */
  hold(token: SessionToken | null, end: (why: SessionEnd) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.all.delete(ending);
      if (token) {
        const sessions = this.byToken.get(token.id);
        sessions?.delete(ending);
        if (sessions?.size === 0) this.byToken.delete(token.id);
      }
    };
    const ending = (why: SessionEnd) => {
      if (!held) return;
      release();
      end(why);
    };
    this.all.add(ending);
    if (token) {
      const sessions = this.byToken.get(token.id) ?? new Set();
      sessions.add(ending);
      this.byToken.set(token.id, sessions);
      if (token.expiresAt) {
        const expiresAt = token.expiresAt.getTime();
        const wait = () => {
          const left = expiresAt - Date.now();
          if (left <= 0) ending({ code: 'UNAUTHENTICATED', message: 'Not authenticated: this API token has expired.' });
          else timer = setTimeout(wait, Math.min(left, MAX_TIMER_MS)).unref();
        };
        wait();
      }
    }
    return release;
  }

  /** Ends every session (shutdown) and stops following revocations. */
  endAll(why: SessionEnd): void {
    for (const end of [...this.all]) end(why);
    void this.revocations.return?.();
  }

  get size(): number {
    return this.all.size;
  }
}

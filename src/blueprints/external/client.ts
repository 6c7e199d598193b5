import type { z } from 'zod';
import { PermanentFailure } from '../../failures.js';
import { failureOf, unansweredFailure, unsendableFailure } from './failures.js';
import {
  providerList,
  providerResource,
  type AllocateRequest,
  type ProviderListEntry,
  type ProviderResource,
} from './protocol.js';
import { withoutToken } from './redaction.js';

// One provisioner, spoken to over JSON/HTTP. Every call has its own deadline, so a provisioner
// that hangs costs one worker slot for `timeoutMs` and never a whole process; the allocator, not
// this client, decides when to try again (with backoff), so each call is made exactly once.
// Whatever the provisioner says reaches logs only through `redact`: it may quote our token back.

export interface ProvisionerClientOptions {
  /** Base URL; the protocol's paths are resolved under it. */
  url: string;
  token?: string | undefined;
  timeoutMs: number;
  /** Caps how long a provisioner may ask us to wait before retrying. */
  maxRetryAfterMs: number;
  /** Aborts calls in flight when the process stops. */
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  body: string;
}

export class ProvisionerClient {
  private readonly base: URL;

  constructor(private readonly options: ProvisionerClientOptions) {
    this.base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
  }

  /** Creates the box for `requestId`, or reports the one that already exists (idempotent). */
  async allocate(request: AllocateRequest): Promise<ProviderResource> {
    const answer = await this.send('POST', 'allocate', request);
    const resource = this.parse('POST /allocate', answer, providerResource);
    if (resource.requestId !== request.requestId)
      throw new PermanentFailure(
        this.redact(`provisioner POST /allocate answered for request ${resource.requestId}, not ${request.requestId}`),
      );
    return this.redactMessage(resource);
  }

  /** The box's current state; null when the provisioner no longer knows it. */
  async get(id: string): Promise<ProviderResource | null> {
    const answer = await this.send('GET', `resources/${encodeURIComponent(id)}`, undefined, [404]);
    return answer.status === 404
      ? null
      : this.redactMessage(this.parse(`GET /resources/${id}`, answer, providerResource));
  }

  /** Destroys a box; one that is already gone counts as destroyed. */
  async delete(id: string): Promise<void> {
    await this.send('DELETE', `resources/${encodeURIComponent(id)}`, undefined, [404]);
  }

  /**
   * The provisioner's boxes. The filters only spare work: a provisioner may ignore them, so the
   * answer is filtered here again.
   */
  async list(filter: { prefix?: string; requestId?: string }): Promise<ProviderListEntry[]> {
    const query = new URLSearchParams();
    if (filter.prefix !== undefined) query.set('prefix', filter.prefix);
    if (filter.requestId !== undefined) query.set('requestId', filter.requestId);
    const answer = await this.send('GET', `resources${query.size > 0 ? `?${query}` : ''}`);
    return this.parse('GET /resources', answer, providerList).resources.filter(
      (r) =>
        (filter.prefix === undefined || r.requestId.startsWith(filter.prefix)) &&
        (filter.requestId === undefined || r.requestId === filter.requestId),
    );
  }

  /** `text`, which a provisioner supplied, without this client's token. */
  redact(text: string): string {
    return withoutToken(text, this.options.token);
  }

  private redactMessage(resource: ProviderResource): ProviderResource {
    return resource.message === undefined ? resource : { ...resource, message: this.redact(resource.message) };
  }

  private async send(method: string, path: string, body?: unknown, acceptable: number[] = []): Promise<Answer> {
    const call = this.redact(`${method} /${path.split('?')[0]}`);
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const signal = this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers['authorization'] = `Bearer ${this.options.token}`;
    // Built apart from sending: a request fetch refuses to build (a URL with a user name, a token
    // that is no valid header value) would be refused on every try, so it is no network failure.
    let request: Request;
    try {
      request = new Request(new URL(path, this.base), {
        method,
        headers,
        signal,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw unsendableFailure(call, error, (text) => this.redact(text));
    }
    let answer: Answer;
    let retryAfter: string | null;
    try {
      // The body is read under the same deadline: a provisioner that sends headers and then
      // stalls is as hung as one that never answers.
      const response = await fetch(request);
      answer = { status: response.status, body: await response.text() };
      retryAfter = response.headers.get('retry-after');
    } catch (error) {
      const why = timeout.aborted ? 'timeout' : this.options.signal?.aborted ? 'stopping' : 'network';
      throw unansweredFailure(call, why, error, this.options.timeoutMs);
    }
    if ((answer.status >= 200 && answer.status < 300) || acceptable.includes(answer.status)) return answer;
    // Redacted before failureOf shortens it, so that a cut cannot leave part of the token behind.
    throw failureOf(call, answer.status, this.redact(answer.body), retryAfter, this.options.maxRetryAfterMs);
  }

  private parse<T>(call: string, answer: Answer, schema: z.ZodType<T>): T {
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch {
      throw new PermanentFailure(
        this.redact(`provisioner ${call} answered ${answer.status} with a body that is not JSON`),
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new PermanentFailure(
        this.redact(
          `provisioner ${call} answered with a malformed body: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
        ),
      );
    }
    return parsed.data;
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// The reference implementation of docs/external-provisioner.md: a real HTTP server on loopback that
// the tests steer. It boots boxes after a delay, can refuse (over quota, or for good), hang, fail
// boxes at boot, and hide what a box is until it is open (the seed's mystery box). It records every
// call so that tests can assert on what Drydock asked, and when.

export type CallKind = 'allocate' | 'get' | 'delete' | 'list';

export interface Box {
  id: string;
  requestId: string;
  resourceType: string;
  requested: Record<string, unknown>;
  parameters: Record<string, unknown>;
  /** What the box is; reported only once it is ready. */
  hidden: Record<string, unknown>;
  createdAt: number;
  readyAt: number;
  /** Set when the box was created while `failBoot` was: it fails at readyAt with this message. */
  bootFailure: string | null;
  deletedAt: number | null;
}

export interface Call {
  kind: CallKind;
  method: string;
  path: string;
  at: number;
  /** HTTP status answered, or 'hung' for a call never answered. */
  status: number | 'hung';
  requestId?: string;
}

export class ReferenceProvisioner {
  /** How long a box stays pending. */
  bootDelayMs = 0;
  /** What the n-th box created is (the last one repeats). */
  boxes: Record<string, unknown>[] = [{ cpus: 2, memoryGb: 4 }];
  /** Ignore what was asked for: a box is whatever comes next in `boxes`. */
  mysteryBox = false;
  /** Most boxes alive at once; a new allocate past it is answered 429 over-quota. */
  quota = Number.POSITIVE_INFINITY;
  /** Answer this many new allocates with over-quota whatever the quota. */
  overQuotaAnswers = 0;
  /** Sent with over-quota answers, when set. */
  overQuotaRetryAfterMs: number | undefined;
  /** Refuse new allocates for good (422) with this message. */
  failAllocate: string | null = null;
  /** Boxes created while set fail at boot with this message. */
  failBoot: string | null = null;
  /** Calls never answered. A hung allocate still creates its box first (the work was accepted). */
  readonly hang = new Set<CallKind>();
  /** When set, calls without `Authorization: Bearer <token>` are refused (401). */
  token: string | null = null;

  readonly calls: Call[] = [];
  private readonly all = new Map<string, Box>();
  private created = 0;
  private readonly server: Server;
  private readonly hung = new Set<ServerResponse>();
  url = '';

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Every box ever created, deleted ones too, in creation order. */
  allBoxes(): Box[] {
    return [...this.all.values()];
  }

  /** Boxes not deleted, in creation order. */
  liveBoxes(): Box[] {
    return [...this.all.values()].filter((b) => b.deletedAt === null);
  }

  boxFor(requestId: string): Box | undefined {
    return [...this.all.values()].find((b) => b.requestId === requestId);
  }

  statusOf(box: Box, now = Date.now()): 'pending' | 'ready' | 'failed' {
    if (now < box.readyAt) return 'pending';
    return box.bootFailure === null ? 'ready' : 'failed';
  }

  /** A box nobody asked Drydock for: what a leak looks like from the provisioner's side. */
  inject(requestId: string, ageMs = 0): Box {
    return this.create({ requestId, resourceType: 'machine', attributes: {}, parameters: {} }, Date.now() - ageMs);
  }

  count(kind: CallKind, status?: number | 'hung'): number {
    return this.calls.filter((c) => c.kind === kind && (status === undefined || c.status === status)).length;
  }

  /** The most boxes that were pending at the same moment, over the server's whole life. */
  maxPending(): number {
    const edges = [...this.all.values()].flatMap((b) => [
      { at: b.createdAt, delta: 1 },
      { at: Math.min(b.readyAt, b.deletedAt ?? Number.POSITIVE_INFINITY), delta: -1 },
    ]);
    // Ends sort before starts at the same instant: a box opening as the next is created is not overlap.
    edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
    let pending = 0;
    let most = 0;
    for (const edge of edges) most = Math.max(most, (pending += edge.delta));
    return most;
  }

  private create(
    request: {
      requestId: string;
      resourceType: string;
      attributes: Record<string, unknown>;
      parameters: Record<string, unknown>;
    },
    now: number,
  ): Box {
    const n = this.created++;
    const nature = this.boxes[Math.min(n, this.boxes.length - 1)] ?? {};
    const box: Box = {
      id: `box-${n + 1}`,
      requestId: request.requestId,
      resourceType: request.resourceType,
      requested: request.attributes,
      parameters: request.parameters,
      hidden: this.mysteryBox ? { ...nature } : { ...nature, ...request.attributes },
      createdAt: now,
      readyAt: now + this.bootDelayMs,
      bootFailure: this.failBoot,
      deletedAt: null,
    };
    this.all.set(box.id, box);
    return box;
  }

  private view(box: Box) {
    const status = this.statusOf(box);
    return {
      id: box.id,
      requestId: box.requestId,
      status,
      ...(status === 'ready' ? { attributes: box.hidden } : {}),
      ...(status === 'failed' ? { message: box.bootFailure } : {}),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://provisioner');
    const method = req.method ?? 'GET';
    const body = await readBody(req);
    const kind: CallKind | null =
      method === 'POST' && url.pathname === '/allocate'
        ? 'allocate'
        : method === 'GET' && url.pathname === '/resources'
          ? 'list'
          : url.pathname.startsWith('/resources/')
            ? method === 'DELETE'
              ? 'delete'
              : method === 'GET'
                ? 'get'
                : null
            : null;
    const call: Call = { kind: kind ?? 'get', method, path: url.pathname, at: Date.now(), status: 404 };
    const send = (status: number, json: unknown) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    };
    const error = (status: number, code: string, message: string, retryAfterMs?: number) =>
      send(status, { error: { code, message, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) } });
    this.calls.push(call);

    if (kind === null) return error(404, 'not-found', `no route for ${method} ${url.pathname}`);
    if (this.token !== null && req.headers.authorization !== `Bearer ${this.token}`)
      return error(401, 'unauthorized', 'a valid bearer token is required');

    let request: Record<string, unknown> = {};
    if (kind === 'allocate') {
      try {
        request = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return error(400, 'bad-request', 'the body is not JSON');
      }
      if (typeof request['requestId'] !== 'string') return error(400, 'bad-request', 'requestId is required');
      call.requestId = request['requestId'];
    }
    const hang = () => {
      call.status = 'hung';
      this.hung.add(res);
    };

    switch (kind) {
      case 'allocate': {
        const requestId = request['requestId'] as string;
        const existing = [...this.all.values()].find((b) => b.requestId === requestId && b.deletedAt === null);
        if (existing) return this.hang.has('allocate') ? hang() : send(200, this.view(existing));
        if (this.failAllocate !== null) return error(422, 'invalid-request', this.failAllocate);
        if (this.overQuotaAnswers > 0 || this.liveBoxes().length >= this.quota) {
          if (this.overQuotaAnswers > 0) this.overQuotaAnswers--;
          return error(429, 'over-quota', `quota of ${this.quota} boxes reached`, this.overQuotaRetryAfterMs);
        }
        const box = this.create(
          {
            requestId,
            resourceType: String(request['resourceType'] ?? ''),
            attributes: (request['attributes'] ?? {}) as Record<string, unknown>,
            parameters: (request['parameters'] ?? {}) as Record<string, unknown>,
          },
          Date.now(),
        );
        return this.hang.has('allocate') ? hang() : send(201, this.view(box));
      }
      case 'get': {
        if (this.hang.has('get')) return hang();
        const box = this.all.get(decodeURIComponent(url.pathname.slice('/resources/'.length)));
        if (!box || box.deletedAt !== null) return error(404, 'not-found', 'no such box');
        return send(200, this.view(box));
      }
      case 'delete': {
        if (this.hang.has('delete')) return hang();
        const box = this.all.get(decodeURIComponent(url.pathname.slice('/resources/'.length)));
        if (!box || box.deletedAt !== null) return error(404, 'not-found', 'no such box');
        box.deletedAt = Date.now();
        res.statusCode = 204;
        call.status = 204;
        return void res.end();
      }
      case 'list': {
        if (this.hang.has('list')) return hang();
        const prefix = url.searchParams.get('prefix');
        const requestId = url.searchParams.get('requestId');
        const now = Date.now();
        const resources = this.liveBoxes()
          .filter(
            (b) =>
              (prefix === null || b.requestId.startsWith(prefix)) && (requestId === null || b.requestId === requestId),
          )
          .map((b) => ({ id: b.id, requestId: b.requestId, status: this.statusOf(b, now), ageMs: now - b.createdAt }));
        return send(200, { resources });
      }
    }
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startProvisioner(): Promise<ReferenceProvisioner> {
  return new ReferenceProvisioner().start();
}

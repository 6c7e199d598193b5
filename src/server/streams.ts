import type { ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';

/** The media types Yoga answers a subscription with: the response stays open while it streams. */
const STREAM_TYPES = /^\s*(text\/event-stream|multipart\/mixed)\b/i;

/**
 * HTTP responses that turn into event streams, and what must happen when they do (the request
 * gives up its admission slot, the stream is held by its token). Whether a response streams is
 * known only once Yoga has chosen how to answer: a subscription is streamed as SSE whatever the
 * request's Accept header says (`*\/*`, none), so the header cannot tell.
 */
export class StreamingResponses {
  private readonly waiting = new WeakMap<ServerResponse, (() => void)[]>();

  /** Runs `then` if and when `res` starts streaming. */
  whenStreaming(res: ServerResponse, then: () => void): void {
    const list = this.waiting.get(res);
    if (list) list.push(then);
    else this.waiting.set(res, [then]);
  }

  /** The Yoga plugin that sees each response before it is sent. */
  plugin(): Plugin {
    return {
      onResponse: ({ response, serverContext }) => {
        const res = (serverContext as { res?: ServerResponse } | undefined)?.res;
        if (!res || !STREAM_TYPES.test(response.headers.get('content-type') ?? '')) return;
        const list = this.waiting.get(res);
        this.waiting.delete(res);
        for (const then of list ?? []) then();
      },
    };
  }
}

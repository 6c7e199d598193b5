import type { ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { recordServerEnd } from './operation-log.js';
import type { SessionEnd } from './sessions.js';

/**
 * The media types of responses Yoga keeps open while it streams: SSE (every subscription, and any
 * operation that asks for it) and multipart/mixed (an operation that asks for it; Yoga answers a
 * subscription with it only where SSE is refused, which it is not here).
 */
const STREAM_TYPES = /^\s*(text\/event-stream|multipart\/mixed)\b/i;

/** How a streaming response frames its results, and so how the server may end it early. */
export type StreamFormat = 'sse' | 'multipart';

/**
 * HTTP responses that turn into event streams, and what must happen when they do (the request
 * gives up its admission slot, the stream is held by its token). Whether a response streams is
 * known only once Yoga has chosen how to answer: a subscription is streamed as SSE whatever the
 * request's Accept header says (`*\/*`, none), so the header cannot tell.
 */
export class StreamingResponses {
  private readonly waiting = new WeakMap<ServerResponse, ((format: StreamFormat) => void)[]>();

  /** Runs `then` if and when `res` starts streaming, before any of its body is written. */
  whenStreaming(res: ServerResponse, then: (format: StreamFormat) => void): void {
    const list = this.waiting.get(res);
    if (list) list.push(then);
    else this.waiting.set(res, [then]);
  }

  /** The Yoga plugin that sees each response before it is sent. */
  plugin(): Plugin {
    return {
      onResponse: ({ response, serverContext }) => {
        const res = (serverContext as { res?: ServerResponse } | undefined)?.res;
        const type = STREAM_TYPES.exec(response.headers.get('content-type') ?? '');
        if (!res || !type) return;
        const format: StreamFormat = type[1]!.toLowerCase() === 'multipart/mixed' ? 'multipart' : 'sse';
        const list = this.waiting.get(res);
        this.waiting.delete(res);
        for (const then of list ?? []) then(format);
      },
    };
  }
}

/**
 * How the server ends a streaming response early (its token revoked or expired, shutdown): with a
 * last result that says why, as a GraphQL error, in the response's own framing, so that a client
 * parsing the stream reads a clean end. To be called when the response starts streaming (see
 * `whenStreaming`), before its body is written.
 */
export function streamEnder(res: ServerResponse, format: StreamFormat): (why: SessionEnd) => void {
  const end = format === 'sse' ? (why: SessionEnd) => endEventStream(res, why) : multipartEnder(res);
  return (why) => {
    recordServerEnd(res, why.code);
    end(why);
  };
}

const endResult = (why: SessionEnd) =>
  JSON.stringify({ errors: [{ message: why.message, extensions: { code: why.code } }] });

/**
 * Ends an SSE stream with a last event that says why, then `complete`. Yoga may still be writing
 * the stream's next event: after the end that write fails, harmlessly, as it would for a client
 * that went away.
 */
function endEventStream(res: ServerResponse, why: SessionEnd): void {
  res.on('error', () => {});
  if (!res.headersSent) {
    res.destroy();
    return;
  }
  res.end(`event: next\ndata: ${endResult(why)}\n\nevent: complete\ndata:\n\n`);
}

/** Yoga's multipart/mixed delimiter (its boundary is "-"): one before each part, and after the last. */
const DELIMITER = '---';

/**
 * Ends a multipart/mixed response the way Yoga ends one: a last part, then the closing delimiter
 * (the last delimiter followed by "--"). Yoga writes a part in several pieces, and under
 * backpressure waits between them for the client to read: the end then waits for the part to be
 * complete, or the client would get half a part with the end glued to it. Yoga's own writes after
 * that end are dropped: they would only repeat the closing.
 */
function multipartEnder(res: ServerResponse): (why: SessionEnd) => void {
  let tail = '';
  let waiting: SessionEnd | null = null;
  let ended = false;
  const betweenParts = () => tail === DELIMITER;
  const end = (why: SessionEnd) => {
    ended = true;
    const body = endResult(why);
    res.end(
      `\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
        `${body}\r\n${DELIMITER}--\r\n`,
    );
  };
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (ended) return true;
    const written = write(chunk, ...rest);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('latin1');
    tail = (tail + text.slice(-DELIMITER.length)).slice(-DELIMITER.length);
    if (waiting && betweenParts()) end(waiting);
    return written;
  }) as typeof res.write;
  return (why) => {
    res.on('error', () => {});
    if (!res.headersSent) {
      res.destroy();
      return;
    }
    if (ended) return;
    if (betweenParts()) end(why);
    else waiting = why;
  };
}

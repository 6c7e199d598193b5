import type { OutputStream } from '../transports/transport.js';

export type LeaseCommandEvent =
  { kind: 'output'; stream: OutputStream; text: string } | { kind: 'exit'; exitCode: number | null; timedOut: boolean };

/** Output queued in a row on one stream goes out as one event, up to this size. */
const MAX_EVENT_CHARACTERS = 64 * 1024;
/** Output waiting for a slow subscriber; past it the oldest is dropped, as a terminal scrolls. */
const MAX_PENDING_CHARACTERS = 4 * 1024 * 1024;

type Run = (
  emit: (stream: OutputStream, text: string) => void,
  signal: AbortSignal,
) => Promise<{ exitCode: number | null; timedOut: boolean }>;

const done = (): IteratorResult<LeaseCommandEvent> => ({ done: true, value: undefined });

/**
 * A command's output as an async iterator: the output events as they come, then one exit event.
 * Written by hand rather than as an async generator: a generator's `return()` waits until the
 * generator next reaches a `yield`, so a subscriber leaving during a silent `sleep 600` would
 * leave the command running for ten minutes. Here `return()` aborts it at once.
 */
export function commandStream(run: Run): AsyncIterableIterator<LeaseCommandEvent> {
  const controller = new AbortController();
  const pending: LeaseCommandEvent[] = [];
  let pendingCharacters = 0;
  let dropped = 0;
  let started = false;
  let finished = false;
  let closed = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;

  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };

  const emit = (stream: OutputStream, text: string) => {
    if (closed || text === '') return;
    const last = pending.at(-1);
    if (last?.kind === 'output' && last.stream === stream && last.text.length + text.length <= MAX_EVENT_CHARACTERS) {
      last.text += text;
    } else {
      pending.push({ kind: 'output', stream, text });
    }
    pendingCharacters += text.length;
    while (pendingCharacters > MAX_PENDING_CHARACTERS && pending.length > 1) {
      const oldest = pending.shift();
      const size = oldest?.kind === 'output' ? oldest.text.length : 0;
      pendingCharacters -= size;
      dropped += size;
    }
    notify();
  };

  const begin = () => {
    started = true;
    run(emit, controller.signal).then(
      (exit) => {
        pending.push({ kind: 'exit', ...exit });
        finished = true;
        notify();
      },
      (error: unknown) => {
        failure = { error };
        finished = true;
        notify();
      },
    );
  };

  const close = () => {
    closed = true;
    controller.abort();
    notify();
  };

  const iterator: AsyncIterableIterator<LeaseCommandEvent> = {
    async next() {
      if (!started) begin();
      for (;;) {
        if (closed) return done();
        if (dropped > 0) {
          const text = `[drydock: ${dropped} characters of output dropped: the client read too slowly]\n`;
          dropped = 0;
          return { done: false, value: { kind: 'output', stream: 'stderr', text } };
        }
        const event = pending.shift();
        if (event) {
          if (event.kind === 'output') pendingCharacters -= event.text.length;
          return { done: false, value: event };
        }
        if (finished) {
          closed = true;
          if (failure) throw failure.error;
          return done();
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return() {
      close();
      return done();
    },
    async throw(error: unknown) {
      close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

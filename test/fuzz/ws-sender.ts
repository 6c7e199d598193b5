import WebSocket from 'ws';
import type { WsCase } from './ws-cases.js';

export interface WsOutcome {
  messages: string[];
  /** The HTTP status when the server refused the upgrade. */
  upgradeStatus?: number;
  close?: { code: number; reason: string };
  error?: string;
  timedOut: boolean;
}

/** Runs one case on a fresh socket and ends when the server has visibly dealt with it. */
export function runWsCase(wsUrl: string, c: WsCase, timeoutMs = 5_000): Promise<WsOutcome> {
  return new Promise((resolve) => {
    const outcome: WsOutcome = { messages: [], timedOut: false };
    const socket = new WebSocket(wsUrl, c.protocol ? [c.protocol] : [], { maxPayload: 4 * 1024 * 1024 });
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The outcome is what the server did until now: terminating a socket that is still
      // connecting reports an error and a close with 1006 of the client's own making, which would
      // read as a server that broke the connection.
      for (const event of ['message', 'close', 'error'] as const) socket.removeAllListeners(event);
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
        socket.on('error', () => {});
        socket.terminate();
      }
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      outcome.timedOut = true;
      finish();
    }, timeoutMs);
    let phase: 'init' | 'frames' | 'done' = 'init';
    const sendFrames = () => {
      phase = 'frames';
      for (const frame of c.frames) socket.send(frame, () => {});
      if (!c.awaitId) socket.send(JSON.stringify({ type: 'ping' }), () => {});
    };
    socket.on('unexpected-response', (_req, res) => {
      outcome.upgradeStatus = res.statusCode ?? 0;
      res.resume();
      finish();
    });
    socket.on('error', (error) => {
      outcome.error = error.message;
    });
    socket.on('close', (code, reason) => {
      outcome.close = { code, reason: reason.toString() };
      finish();
    });
    socket.on('message', (data: Buffer) => {
      const text = data.toString();
      outcome.messages.push(text);
      let message: { type?: string; id?: string } = {};
      try {
        message = JSON.parse(text) as typeof message;
      } catch {
        // The server only speaks JSON; a non-JSON frame is recorded and judged by the caller.
      }
      if (phase === 'init' && message.type === 'connection_ack') return sendFrames();
      if (phase !== 'frames') return;
      const ended = c.awaitId
        ? message.id === c.awaitId && (message.type === 'error' || message.type === 'complete')
        : message.type === 'pong';
      if (ended) {
        phase = 'done';
        finish();
      }
    });
    socket.on('open', () => {
      if (c.init) socket.send(JSON.stringify({ type: 'connection_init' }));
      else sendFrames();
    });
  });
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Progress {
  /** A line that stays (a log entry). */
  line(text: string): void;
  /**
   * The transient status; on a terminal it is redrawn under the lines with a spinner. Elsewhere
   * only `remark` is printed, once each time it changes (e.g. why a lease waits).
   */
  status(text: string, remark?: string): void;
  stop(): void;
}

/**
 * On a terminal: lines scroll above a spinner line that is redrawn in place. Elsewhere (a pipe,
 * a CI log): plain lines only.
 */
export function createProgress(stream: NodeJS.WriteStream): Progress {
  if (!stream.isTTY) {
    let last = '';
    return {
      line: (text) => void stream.write(`${text}\n`),
      status: (_text, remark = '') => {
        if (remark && remark !== last) stream.write(`${remark}\n`);
        last = remark;
      },
      stop: () => {},
    };
  }
  let frame = 0;
  let current = '';
  const started = Date.now();
  const draw = () => {
    const seconds = Math.floor((Date.now() - started) / 1000);
    const text = `${FRAMES[frame % FRAMES.length]} ${current} (${seconds}s)`;
    const width = stream.columns || 80;
    stream.write(`\r\x1b[2K${text.length > width ? text.slice(0, width - 1) : text}`);
  };
  const timer = setInterval(() => {
    frame++;
    draw();
  }, 100);
  timer.unref();
  return {
    line: (text) => {
      stream.write(`\r\x1b[2K${text}\n`);
      draw();
    },
    status: (text) => {
      current = text;
      draw();
    },
    stop: () => {
      clearInterval(timer);
      stream.write('\r\x1b[2K');
    },
  };
}

/** What a transport keeps of each stream for its result: the end matters most (the error, the summary). */
export const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;

/**
 * Text kept up to a limit, dropping from the front. Counted in UTF-16 units rather than bytes:
 * close enough for a bound on memory, and cutting never splits what a decoder already joined.
 */
export class OutputTail {
  private chunks: string[] = [];
  private length = 0;
  private dropped = false;

  constructor(private readonly limit = DEFAULT_OUTPUT_LIMIT) {}

  append(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    // Trimming on every append would copy the whole tail each time; let it grow to twice the limit.
    if (this.length > this.limit * 2) this.trim();
  }

  toString(): string {
    this.trim();
    const text = this.chunks.join('');
    return this.dropped ? `[… earlier output dropped …]\n${text}` : text;
  }

  private trim(): void {
    if (this.length <= this.limit) return;
    const text = this.chunks.join('');
    const kept = text.slice(text.length - this.limit);
    this.chunks = [kept];
    this.length = kept.length;
    this.dropped = true;
  }
}

/** Signs in a response or close reason that internals leaked out: a stack frame or a dependency path. */
const leakPatterns = [/at .*\.(ts|js):\d+/, /node_modules/];

export function leakedInternals(text: string): string | null {
  // The GraphiQL page (what a browser's GET gets) bundles third-party code whose comments name
  // node_modules paths: a fixed static page, not something the input made the server reveal.
  if (/^\s*<!doctype html>/i.test(text) && text.includes('<title>Drydock</title>')) return null;
  for (const pattern of leakPatterns) {
    const match = pattern.exec(text);
    if (match) return text.slice(Math.max(0, match.index - 80), match.index + 160);
  }
  return null;
}

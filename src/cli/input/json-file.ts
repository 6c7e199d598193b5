import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** Reads a JSON object from a file, or from stdin when the name is "-" (as --attributes and --config take it). */
export async function readJsonObject(
  flag: string,
  source: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = source === '-' ? await readAll(stdin) : await readFile(source, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new UsageError(`${flag}: cannot read ${source}${code ? ` (${code})` : ''}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(
      `${flag}: ${source === '-' ? 'stdin' : source} is not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${flag}: expected a JSON object such as {"platform": "linux"}`);
  }
  return value as Record<string, unknown>;
}

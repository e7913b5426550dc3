import { fromBase64 } from "./base64";
import type { StemId } from "./job";

export interface ToolResult {
  isError?: boolean;
  content?: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
}

export type CallTool = (name: string, args: Record<string, unknown>, signal: AbortSignal) => Promise<ToolResult>;

interface Chunk {
  offset: number;
  next_offset: number | null;
  size: number;
  mime: string;
  data: string;
}

export class ToolCallError extends Error {}

export function resultText(result: ToolResult): string {
  return (result.content ?? [])
    .filter((c) => c.type === "text" && c.text)
    .map((c) => c.text)
    .join("\n");
}

function asChunk(value: unknown): Chunk {
  const c = value as Partial<Chunk> | undefined;
  if (!c || typeof c.data !== "string" || typeof c.size !== "number" || typeof c.offset !== "number") {
    throw new ToolCallError("stem_audio returned no audio chunk.");
  }
  return c as Chunk;
}

/** One stem's bytes through the app-only `stem_audio` tool, chunk after chunk (each at most 512 KiB). */
export async function fetchStem(
  call: CallTool,
  jobId: string,
  stem: StemId,
  signal: AbortSignal,
  onBytes: (received: number, total: number) => void,
): Promise<{ bytes: Uint8Array; mime: string }> {
  let bytes: Uint8Array | null = null;
  let offset: number | null = 0;
  let mime = "audio/mpeg";
  while (offset !== null) {
    signal.throwIfAborted();
    const result = await call("stem_audio", { job_id: jobId, stem, offset }, signal);
    if (result.isError) throw new ToolCallError(resultText(result) || `stem_audio failed for the ${stem} stem.`);
    const chunk = asChunk(result.structuredContent);
    if (chunk.offset !== offset) throw new ToolCallError(`stem_audio answered offset ${chunk.offset}, not ${offset}.`);
    const data = fromBase64(chunk.data);
    bytes ??= new Uint8Array(chunk.size);
    if (chunk.offset + data.length > bytes.length) throw new ToolCallError(`The ${stem} stem is longer than announced.`);
    bytes.set(data, chunk.offset);
    mime = chunk.mime || mime;
    const next: number | null = chunk.next_offset ?? null;
    if (next !== null && next <= offset) throw new ToolCallError(`stem_audio did not advance past offset ${offset}.`);
    offset = next;
    onBytes(chunk.offset + data.length, chunk.size);
  }
  return { bytes: bytes ?? new Uint8Array(0), mime };
}

import type { StemId } from "./job";

/** What the controls drive: sample-synced Web Audio buffers, or (file:// fallback) two media elements. */
export interface Transport {
  readonly kind: "webaudio" | "elements";
  readonly duration: number;
  readonly playing: boolean;
  position(): number;
  play(): Promise<void>;
  pause(): void;
  seek(seconds: number): void;
  setGains(gains: Record<StemId, number>): void;
  /** Live values, for tests and the model context. */
  graph(): Record<string, unknown>;
  close(): Promise<void>;
  onended: (() => void) | null;
}

import { STEMS, type StemId } from "./job";
import type { Transport } from "./transport";

const START_LEAD_S = 0.05;
const GAIN_RAMP_S = 0.015;

interface StartRecord {
  stem: StemId;
  when: number;
  offset: number;
}

/** Both stems on one AudioContext clock: one source + one gain per stem, all started by one start(when, offset). */
export class BufferEngine implements Transport {
  readonly kind = "webaudio" as const;
  readonly duration: number;
  onended: (() => void) | null = null;

  private readonly gains: Record<StemId, GainNode>;
  private targets: Record<StemId, number> = { vocals: 1, instrumental: 1 };
  private sources: AudioBufferSourceNode[] = [];
  private startedAt = 0; // context time at which position 0 would have played
  private pausedAt = 0;
  private lastStarts: StartRecord[] = [];
  private closed = false;

  constructor(
    private readonly ctx: AudioContext,
    private readonly buffers: Record<StemId, AudioBuffer>,
  ) {
    this.duration = Math.max(...STEMS.map((s) => buffers[s].duration));
    this.gains = {
      vocals: this.makeGain(),
      instrumental: this.makeGain(),
    };
  }

  get playing(): boolean {
    return this.sources.length > 0;
  }

  position(): number {
    if (!this.playing) return this.pausedAt;
    return Math.min(this.duration, Math.max(0, this.ctx.currentTime - this.startedAt));
  }

  async play(): Promise<void> {
    if (this.closed || this.playing) return;
    if (this.ctx.state !== "running") await this.ctx.resume();
    const offset = this.pausedAt >= this.duration ? 0 : this.pausedAt;
    const when = this.ctx.currentTime + START_LEAD_S;
    this.startedAt = when - offset;
    this.lastStarts = [];
    for (const stem of STEMS) {
      const source = this.ctx.createBufferSource();
      source.buffer = this.buffers[stem];
      source.connect(this.gains[stem]);
      source.start(when, Math.min(offset, this.buffers[stem].duration));
      this.sources.push(source);
      this.lastStarts.push({ stem, when, offset });
    }
    const longest = this.sources.reduce((a, b) => ((a.buffer?.duration ?? 0) >= (b.buffer?.duration ?? 0) ? a : b));
    longest.onended = () => {
      if (!this.sources.includes(longest)) return;
      this.stopSources();
      this.pausedAt = 0;
      this.onended?.();
    };
  }

  pause(): void {
    if (!this.playing) return;
    this.pausedAt = this.position();
    this.stopSources();
  }

  seek(seconds: number): void {
    const target = Math.min(Math.max(0, seconds), this.duration);
    if (this.playing) {
      this.stopSources();
      this.pausedAt = target;
      void this.play();
    } else {
      this.pausedAt = target;
    }
  }

  setGains(gains: Record<StemId, number>): void {
    this.targets = { ...gains };
    const now = this.ctx.currentTime;
    for (const stem of STEMS) {
      const param = this.gains[stem].gain;
      param.cancelScheduledValues(now);
      param.setValueAtTime(param.value, now);
      param.linearRampToValueAtTime(gains[stem], now + GAIN_RAMP_S);
    }
  }

  graph(): Record<string, unknown> {
    return {
      kind: this.kind,
      contextState: this.ctx.state,
      sampleRate: this.ctx.sampleRate,
      activeSources: this.sources.length,
      sourcesShareContext: this.sources.every((s) => s.context === this.ctx),
      gainsShareContext: STEMS.every((s) => this.gains[s].context === this.ctx),
      lastStarts: this.lastStarts.map((s) => ({ ...s })),
      gainTargets: { ...this.targets },
      gainValues: { vocals: this.gains.vocals.gain.value, instrumental: this.gains.instrumental.gain.value },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopSources();
    if (this.ctx.state !== "closed") await this.ctx.close();
  }

  private makeGain(): GainNode {
    const gain = this.ctx.createGain();
    gain.connect(this.ctx.destination);
    return gain;
  }

  private stopSources(): void {
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // never started (context closed underneath): nothing to stop
      }
      source.disconnect();
    }
    this.sources = [];
  }
}

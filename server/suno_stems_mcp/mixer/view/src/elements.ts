import { STEMS, type StemId } from "./job";
import type { Transport } from "./transport";

const DRIFT_LIMIT_S = 0.04;

/**
 * The file:// fallback. Chromium blocks fetch/XHR of file: URLs and silences a MediaElementAudioSourceNode fed
 * from one (cross-origin), but plain <audio src="vocals.mp3"> plays: so levels are element volumes, and sync is
 * kept by re-aligning the follower element whenever it drifts from the leader.
 */
export class ElementEngine implements Transport {
  readonly kind = "elements" as const;
  onended: (() => void) | null = null;
  private driftTimer: number | undefined;
  private corrections = 0;
  private gains: Record<StemId, number> = { vocals: 1, instrumental: 1 };

  private constructor(private readonly elements: Record<StemId, HTMLAudioElement>) {
    const leader = this.leader();
    leader.addEventListener("ended", () => {
      this.pause();
      this.seek(0);
      this.onended?.();
    });
  }

  static async open(files: Record<StemId, string>): Promise<ElementEngine> {
    const entries = await Promise.all(
      STEMS.map(async (stem) => {
        const audio = new Audio();
        audio.preload = "auto";
        audio.src = files[stem];
        await new Promise<void>((resolve, reject) => {
          audio.addEventListener("loadedmetadata", () => resolve(), { once: true });
          audio.addEventListener("error", () => reject(new Error(`Cannot open ${files[stem]} beside this page.`)), {
            once: true,
          });
        });
        return [stem, audio] as const;
      }),
    );
    return new ElementEngine(Object.fromEntries(entries) as Record<StemId, HTMLAudioElement>);
  }

  get duration(): number {
    return Math.max(...STEMS.map((s) => this.elements[s].duration || 0));
  }

  get playing(): boolean {
    return !this.leader().paused;
  }

  position(): number {
    return this.leader().currentTime;
  }

  async play(): Promise<void> {
    if (this.playing) return;
    const at = this.position();
    for (const stem of STEMS) this.elements[stem].currentTime = at;
    await Promise.all(STEMS.map((s) => this.elements[s].play()));
    this.driftTimer = window.setInterval(() => this.realign(), 250);
  }

  pause(): void {
    window.clearInterval(this.driftTimer);
    for (const stem of STEMS) this.elements[stem].pause();
  }

  seek(seconds: number): void {
    const at = Math.min(Math.max(0, seconds), this.duration);
    for (const stem of STEMS) this.elements[stem].currentTime = at;
  }

  setGains(gains: Record<StemId, number>): void {
    this.gains = { ...gains };
    for (const stem of STEMS) this.elements[stem].volume = Math.min(1, Math.max(0, gains[stem]));
  }

  graph(): Record<string, unknown> {
    return {
      kind: this.kind,
      gainTargets: { ...this.gains },
      volumes: { vocals: this.elements.vocals.volume, instrumental: this.elements.instrumental.volume },
      currentTimes: { vocals: this.elements.vocals.currentTime, instrumental: this.elements.instrumental.currentTime },
      paused: { vocals: this.elements.vocals.paused, instrumental: this.elements.instrumental.paused },
      driftCorrections: this.corrections,
    };
  }

  async close(): Promise<void> {
    this.pause();
    for (const stem of STEMS) {
      this.elements[stem].removeAttribute("src");
      this.elements[stem].load();
    }
  }

  private leader(): HTMLAudioElement {
    return this.elements.vocals.duration >= this.elements.instrumental.duration
      ? this.elements.vocals
      : this.elements.instrumental;
  }

  private realign(): void {
    const leader = this.leader();
    for (const stem of STEMS) {
      const el = this.elements[stem];
      if (el === leader || el.ended || el.currentTime >= el.duration) continue;
      if (Math.abs(el.currentTime - leader.currentTime) > DRIFT_LIMIT_S) {
        el.currentTime = leader.currentTime;
        this.corrections++;
      }
    }
  }
}

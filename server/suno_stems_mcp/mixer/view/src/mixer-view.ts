import { contextCounts } from "./contexts";
import { describeMixer } from "./describe";
import { formatTime, type Job, songTitle, STEMS, type StemId, statusLine } from "./job";
import { type Channels, defaultChannels, effectiveGains } from "./mix";
import { renderMix, rms } from "./render";
import type { Transport } from "./transport";
import { encodeWav } from "./wav";
import { computePeaks, drawWaveform, NEAR_SILENT_DBFS, type Peaks, toDbfs } from "./waveform";

export interface ViewHooks {
  /** Hand a file to the host; resolves false when the host has no download (then a link is shown). */
  download(name: string, mime: string, bytes: Uint8Array): Promise<boolean>;
  /** Called whenever what the person hears or sees changes. */
  changed(): void;
}

const $ = <T extends Element>(selector: string, root: ParentNode = document): T => {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`mixer markup lacks ${selector}`);
  return el;
};

interface StemRow {
  root: HTMLElement;
  canvas: HTMLCanvasElement;
  playhead: HTMLElement;
  volume: HTMLInputElement;
  level: HTMLOutputElement;
  mute: HTMLButtonElement;
  solo: HTMLButtonElement;
  badge: HTMLElement;
}

/** The mixer's controls and what they drive; knows nothing of where the audio came from. */
export class MixerView {
  channels: Channels = defaultChannels();
  job: Job | null = null;
  transport: Transport | null = null;
  private buffers: Record<StemId, AudioBuffer> | null = null;
  private peaks: Partial<Record<StemId, Peaks>> = {};
  private frame = 0;
  private scrubbing = false;
  private downloadUrl: string | null = null;
  private readonly rows: Record<StemId, StemRow>;
  private readonly el = {
    root: $<HTMLElement>("#mixer"),
    title: $<HTMLElement>("#title"),
    status: $<HTMLElement>("#status"),
    progress: $<HTMLElement>("#progress"),
    bar: $<HTMLElement>("#progress .bar"),
    error: $<HTMLElement>("#error"),
    deck: $<HTMLElement>("#deck"),
    play: $<HTMLButtonElement>("#play"),
    seek: $<HTMLInputElement>("#seek"),
    time: $<HTMLElement>("#time"),
    exportButton: $<HTMLButtonElement>("#export"),
    link: $<HTMLAnchorElement>("#download-link"),
    note: $<HTMLElement>("#note"),
  };

  constructor(private readonly hooks: ViewHooks) {
    this.rows = {
      vocals: this.bindRow("vocals"),
      instrumental: this.bindRow("instrumental"),
    };
    this.el.play.addEventListener("click", () => void this.togglePlay());
    this.el.seek.addEventListener("input", () => {
      if (!this.transport) return;
      this.transport.seek((Number(this.el.seek.value) / 1000) * this.transport.duration);
      this.paint();
      this.hooks.changed();
    });
    this.el.seek.addEventListener("pointerdown", () => (this.scrubbing = true));
    for (const end of ["pointerup", "pointercancel", "change"]) {
      this.el.seek.addEventListener(end, () => (this.scrubbing = false));
    }
    this.el.exportButton.addEventListener("click", () => void this.exportMix());
    new ResizeObserver(() => this.drawWaveforms()).observe(this.el.deck);
  }

  showJob(job: Job): void {
    this.job = job;
    this.el.title.textContent = songTitle(job) || "Stem mixer";
    this.setStatus(statusLine(job));
    const pending = !job.done;
    this.el.progress.hidden = !pending;
    this.el.bar.style.width = `${Math.max(2, Math.min(100, job.progress ?? 0))}%`;
    this.el.root.dataset.status = job.status;
    if (job.status === "FAILED" || job.status === "CANCELLED") this.showError(statusLine(job));
  }

  setStatus(text: string): void {
    this.el.status.textContent = text;
  }

  setLoading(fraction: number): void {
    this.el.progress.hidden = false;
    this.el.bar.style.width = `${Math.round(Math.max(0.02, Math.min(1, fraction)) * 100)}%`;
    this.setStatus(`Loading stems… ${Math.round(fraction * 100)} %`);
  }

  showError(text: string): void {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  setNote(text: string): void {
    this.el.note.textContent = text;
  }

  /** Show the deck driving `transport`; `buffers` (decoded stems) enable waveforms and export. */
  attach(transport: Transport, buffers: Record<StemId, AudioBuffer> | null): void {
    const position = this.transport?.position() ?? 0;
    void this.transport?.close();
    this.transport = transport;
    this.buffers = buffers;
    this.peaks = {};
    if (buffers) for (const stem of STEMS) this.peaks[stem] = computePeaks(buffers[stem]);
    transport.onended = () => this.paint();
    transport.setGains(effectiveGains(this.channels));
    if (position) transport.seek(position);
    this.el.progress.hidden = true;
    this.el.deck.hidden = false;
    this.el.exportButton.disabled = !buffers;
    this.el.root.dataset.engine = transport.kind;
    if (this.job?.status === "COMPLETED") this.setStatus("Ready.");
    for (const stem of STEMS) {
      const silent = this.nearSilent(stem);
      this.rows[stem].badge.hidden = !silent;
      this.rows[stem].root.classList.toggle("near-silent", silent);
      this.rows[stem].root.classList.toggle("no-wave", !buffers);
    }
    this.drawWaveforms();
    this.paint();
    this.hooks.changed();
  }

  async detach(): Promise<void> {
    cancelAnimationFrame(this.frame);
    const transport = this.transport;
    this.transport = null;
    this.buffers = null;
    this.el.play.textContent = "▶";
    if (transport) await transport.close();
  }

  redrawForTheme(): void {
    this.drawWaveforms();
  }

  describe(): string | null {
    if (!this.job || !this.transport) return null;
    return describeMixer({
      jobId: this.job.job_id,
      title: songTitle(this.job),
      channels: this.channels,
      playing: this.transport.playing,
      position: this.transport.position(),
      duration: this.transport.duration,
    });
  }

  state(): Record<string, unknown> {
    return {
      jobId: this.job?.job_id ?? null,
      status: this.job?.status ?? null,
      statusText: this.el.status.textContent,
      error: this.el.error.hidden ? null : this.el.error.textContent,
      ready: Boolean(this.transport),
      engine: this.transport?.kind ?? null,
      playing: this.transport?.playing ?? false,
      position: this.transport?.position() ?? 0,
      duration: this.transport?.duration ?? 0,
      channels: structuredClone(this.channels),
      gains: effectiveGains(this.channels),
      peakDbfs: Object.fromEntries(STEMS.map((s) => [s, this.peaks[s] ? toDbfs(this.peaks[s].peak) : null])),
      nearSilent: Object.fromEntries(STEMS.map((s) => [s, this.nearSilent(s)])),
      graph: this.transport?.graph() ?? null,
      audioContexts: contextCounts(),
      description: this.describe(),
    };
  }

  /** Offline render of what is heard now, and of each stem's share of it. */
  async renderCurrent(): Promise<{ mix: AudioBuffer; shares: Record<StemId, number> } | null> {
    if (!this.buffers) return null;
    const gains = effectiveGains(this.channels);
    const mix = await renderMix(this.buffers, gains);
    const shares = {} as Record<StemId, number>;
    for (const stem of STEMS) {
      const alone = { vocals: 0, instrumental: 0, [stem]: gains[stem] } as Record<StemId, number>;
      shares[stem] = rms(await renderMix(this.buffers, alone));
    }
    return { mix, shares };
  }

  private async togglePlay(): Promise<void> {
    const t = this.transport;
    if (!t) return;
    if (t.playing) t.pause();
    else await t.play();
    this.paint();
    this.hooks.changed();
  }

  private async exportMix(): Promise<void> {
    const button = this.el.exportButton;
    button.disabled = true;
    try {
      const rendered = await this.renderCurrent();
      if (!rendered) return;
      const bytes = encodeWav(rendered.mix);
      const name = `${fileSlug(this.job ? songTitle(this.job) : "")}-mix.wav`;
      if (await this.hooks.download(name, "audio/wav", bytes)) {
        this.setNote(`Exported ${name}.`);
        return;
      }
      if (this.downloadUrl) URL.revokeObjectURL(this.downloadUrl);
      this.downloadUrl = URL.createObjectURL(new Blob([bytes as BlobPart], { type: "audio/wav" }));
      this.el.link.href = this.downloadUrl;
      this.el.link.download = name;
      this.el.link.textContent = `Save ${name}`;
      this.el.link.hidden = false;
      this.el.link.click();
    } catch (err) {
      this.showError(`Export failed: ${(err as Error).message}`);
    } finally {
      button.disabled = !this.buffers;
    }
  }

  private bindRow(stem: StemId): StemRow {
    const root = $<HTMLElement>(`.stem[data-stem="${stem}"]`);
    const row: StemRow = {
      root,
      canvas: $("canvas", root),
      playhead: $(".playhead", root),
      volume: $(".volume", root),
      level: $(".level", root),
      mute: $(".mute", root),
      solo: $(".solo", root),
      badge: $(".badge", root),
    };
    row.volume.addEventListener("input", () => {
      this.channels[stem].volume = Number(row.volume.value) / 100;
      this.applyChannels();
    });
    row.mute.addEventListener("click", () => {
      this.channels[stem].muted = !this.channels[stem].muted;
      this.applyChannels();
    });
    row.solo.addEventListener("click", () => {
      this.channels[stem].solo = !this.channels[stem].solo;
      this.applyChannels();
    });
    return row;
  }

  private applyChannels(): void {
    const gains = effectiveGains(this.channels);
    this.transport?.setGains(gains);
    for (const stem of STEMS) {
      const c = this.channels[stem];
      const row = this.rows[stem];
      row.level.textContent = `${Math.round(c.volume * 100)} %`;
      row.mute.setAttribute("aria-pressed", String(c.muted));
      row.solo.setAttribute("aria-pressed", String(c.solo));
      row.root.classList.toggle("silenced", gains[stem] === 0);
    }
    this.hooks.changed();
  }

  private nearSilent(stem: StemId): boolean {
    const peaks = this.peaks[stem];
    return Boolean(peaks) && toDbfs(peaks!.peak) < NEAR_SILENT_DBFS;
  }

  private drawWaveforms(): void {
    for (const stem of STEMS) {
      const peaks = this.peaks[stem];
      const canvas = this.rows[stem].canvas;
      if (peaks && canvas.clientWidth > 0) drawWaveform(canvas, peaks, getComputedStyle(canvas).color);
    }
  }

  private paint = (): void => {
    cancelAnimationFrame(this.frame);
    const t = this.transport;
    if (!t) return;
    const position = t.position();
    const fraction = t.duration ? position / t.duration : 0;
    if (!this.scrubbing) this.el.seek.value = String(Math.round(fraction * 1000));
    this.el.time.textContent = `${formatTime(position)} / ${formatTime(t.duration)}`;
    this.el.play.textContent = t.playing ? "❚❚" : "▶";
    this.el.play.setAttribute("aria-label", t.playing ? "Pause" : "Play");
    for (const stem of STEMS) this.rows[stem].playhead.style.left = `${fraction * 100}%`;
    if (t.playing) this.frame = requestAnimationFrame(this.paint);
  };
}

function fileSlug(title: string): string {
  return (
    title
      .normalize("NFKD")
      .replace(/[^\w\s-]/g, "")
      .trim()
      .replace(/[\s_]+/g, "-")
      .toLowerCase()
      .slice(0, 60) || "stems"
  );
}

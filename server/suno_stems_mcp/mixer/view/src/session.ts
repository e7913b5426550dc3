import { openAudioContext } from "./contexts";
import { asJob, type Job, STEMS, type StemId } from "./job";
import type { MixerView } from "./mixer-view";
import { type CallTool, fetchStem, resultText } from "./stems";
import { BufferEngine } from "./webaudio";

const POLL_WAIT_SECONDS = 8;
const POLL_RETRY_MS = 3000;
const MAX_POLL_FAILURES = 5;

export const mark = (name: string) => performance.mark(`mixer:${name}`);

/** One job in the view: follows it until done, then loads both stems through the MCP connection. */
export class JobSession {
  private readonly abort = new AbortController();
  private polling = false;
  private loading = false;
  private ctx: AudioContext | null = null;

  constructor(
    readonly jobId: string,
    private readonly view: MixerView,
    private readonly call: CallTool | null,
  ) {}

  get closed(): boolean {
    return this.abort.signal.aborted;
  }

  /** A job result for this session's job, from the host or from our own get_job polling. */
  update(job: Job): void {
    if (this.closed) return;
    if (this.view.transport && job.status === "COMPLETED") {
      this.view.job = { ...job };
      return;
    }
    this.view.showJob(job);
    if (!job.done) this.follow(job);
    else if (job.status === "COMPLETED" && !job.expired) void this.load();
    else if (job.expired) this.view.showError("The stem files have expired and can no longer be played here.");
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.view.detach();
    if (this.ctx && this.ctx.state !== "closed") await this.ctx.close().catch(() => undefined);
  }

  private follow(job: Job): void {
    if (this.polling) return;
    if (!this.call) {
      this.view.setNote("This host cannot call tools from the mixer: ask the assistant to check the job again.");
      return;
    }
    this.polling = true;
    void this.poll(job).finally(() => {
      this.polling = false;
    });
  }

  private async poll(job: Job): Promise<void> {
    let failures = 0;
    while (!this.closed && !job.done) {
      try {
        const result = await this.call!("get_job", { job_id: job.job_id, wait_seconds: POLL_WAIT_SECONDS }, this.abort.signal);
        const next = asJob(result.structuredContent);
        if (result.isError || !next) throw new Error(resultText(result) || "get_job returned no job.");
        failures = 0;
        job = next;
        this.update(job);
      } catch (err) {
        if (this.closed) return;
        if (++failures >= MAX_POLL_FAILURES) {
          this.view.showError(`Stopped following the job: ${(err as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, POLL_RETRY_MS));
      }
    }
  }

  private async load(): Promise<void> {
    if (this.loading || this.view.transport) return;
    if (!this.call) {
      this.view.setNote("This host does not let the mixer fetch the stems; their URLs are in the tool result.");
      return;
    }
    this.loading = true;
    mark("load-start");
    const received = { vocals: 0, instrumental: 0 };
    const totals = { vocals: 1, instrumental: 1 };
    const progress = () =>
      this.view.setLoading((received.vocals + received.instrumental) / (totals.vocals + totals.instrumental));
    try {
      this.ctx = openAudioContext();
      const ctx = this.ctx;
      const decoded = await Promise.all(
        STEMS.map(async (stem): Promise<[StemId, AudioBuffer]> => {
          const { bytes } = await fetchStem(this.call!, this.jobId, stem, this.abort.signal, (got, total) => {
            received[stem] = got;
            totals[stem] = total;
            progress();
          });
          mark(`bytes-${stem}`);
          const buffer = await ctx.decodeAudioData(bytes.buffer as ArrayBuffer);
          mark(`decoded-${stem}`);
          return [stem, buffer];
        }),
      );
      if (this.closed) return;
      const buffers = Object.fromEntries(decoded) as Record<StemId, AudioBuffer>;
      this.view.attach(new BufferEngine(ctx, buffers), buffers);
      mark("playable");
    } catch (err) {
      if (this.closed) return;
      const message = err instanceof DOMException && err.name === "EncodingError"
        ? "A stem could not be decoded as audio."
        : (err as Error).message;
      this.view.showError(message);
      this.view.setStatus("Could not load the stems.");
    } finally {
      this.loading = false;
    }
  }
}

export type StemId = "vocals" | "instrumental";
export const STEMS: readonly StemId[] = ["vocals", "instrumental"];

export type JobStatus = "QUEUED" | "PROCESSING" | "COMPLETED" | "FAILED" | "CANCELLED";

export interface Track {
  id: StemId | string;
  title?: string | null;
  duration?: number | null;
  audio_url?: string | null;
  image_url?: string | null;
  tags?: string | null;
  file?: string | null;
}

export interface Job {
  job_id: string;
  status: JobStatus | string;
  done: boolean;
  progress?: number | null;
  credit_cost?: number | null;
  error?: string | null;
  expired?: boolean | null;
  created_at?: string | null;
  completed_at?: string | null;
  tracks?: Track[] | null;
  source?: { parent_job_id?: string; index?: number | null; track_id?: string | null; title?: string | null } | null;
  reused?: boolean | null;
  sandbox?: boolean | null;
  next_step?: string | null;
  [extra: string]: unknown;
}

export function asJob(value: unknown): Job | null {
  if (!value || typeof value !== "object") return null;
  const job = value as Partial<Job>;
  if (typeof job.job_id !== "string" || typeof job.status !== "string") return null;
  return { ...job, done: Boolean(job.done) } as Job;
}

/** The song's title: the one the server names in `source`, else from its stems' titles ("Song (vocals)" ->
 * "Song"); "" while neither is known, and when the stems are titled only by what they are ("Vocals"). */
export function songTitle(job: Job): string {
  const named = job.source?.title?.trim();
  if (named) return named;
  const titled = (job.tracks ?? []).find((t) => t.title);
  const title = (titled?.title ?? "").replace(/\s*[-–(]\s*(vocals|instrumental)\)?\s*$/i, "");
  return /^\s*(vocals|instrumental)\s*$/i.test(title) ? "" : title;
}

export function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds + 1e-6));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function statusLine(job: Job): string {
  switch (job.status) {
    case "QUEUED":
      return "Queued: waiting for the splitter to start…";
    case "PROCESSING":
      return job.progress != null ? `Splitting… ${Math.round(job.progress)} %` : "Splitting…";
    case "COMPLETED":
      return job.expired ? "Completed, but the stem files have expired." : "Completed.";
    case "FAILED":
      return `Failed${job.error ? `: ${job.error}` : "."}`;
    case "CANCELLED":
      return "Cancelled.";
    default:
      return `Status: ${job.status}`;
  }
}

import { formatTime, STEMS } from "./job";
import type { Channels } from "./mix";

export interface DescribeInput {
  jobId: string;
  title: string;
  channels: Channels;
  playing: boolean;
  position: number;
  duration: number;
}

/** The sentence the model reads, e.g. "Mixer for job …: vocals at 10 %, instrumental at 100 %, vocals muted; playing at 0:42 of 3:05." */
export function describeMixer(d: DescribeInput): string {
  const levels = STEMS.map((s) => `${s} at ${Math.round(d.channels[s].volume * 100)} %`).join(", ");
  const flags = STEMS.flatMap((s) => [
    ...(d.channels[s].solo ? [`${s} soloed`] : []),
    ...(d.channels[s].muted ? [`${s} muted`] : []),
  ]);
  const where = `${d.playing ? "playing" : "paused"} at ${formatTime(d.position)} of ${formatTime(d.duration)}`;
  const title = d.title ? ` ("${d.title}")` : "";
  return `Mixer for job ${d.jobId}${title}: ${[levels, ...flags].join(", ")}; ${where}.`;
}

export function debounce(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: number | undefined;
  const wrapped = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
  wrapped.cancel = () => window.clearTimeout(timer);
  return wrapped;
}

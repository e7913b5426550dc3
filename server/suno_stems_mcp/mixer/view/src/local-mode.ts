import { openAudioContext } from "./contexts";
import { ElementEngine } from "./elements";
import { type Job, STEMS, type StemId } from "./job";
import type { MixerView } from "./mixer-view";
import { mark } from "./session";
import { BufferEngine } from "./webaudio";

export interface LocalConfig {
  mode: "local";
  job?: Job;
  files: Record<StemId, string>;
}

export function isLocalConfig(value: unknown): value is LocalConfig {
  const c = value as Partial<LocalConfig> | null;
  return c?.mode === "local" && typeof c.files?.vocals === "string" && typeof c.files?.instrumental === "string";
}

/** mixer.html saved beside the stems, opened with no host: file:// or any static web server. */
export async function startLocal(view: MixerView, config: LocalConfig): Promise<void> {
  if (config.job) view.showJob(config.job);
  const picker = document.querySelector<HTMLElement>("#picker")!;
  const input = document.querySelector<HTMLInputElement>("#files")!;
  input.addEventListener("change", () => void loadPicked(view, config, input, picker));
  try {
    // fetch of a file: URL always fails (and logs an error): go straight to the media elements there
    if (location.protocol === "file:") throw new Error("file: URLs cannot be read");
    const buffers = await decodeAll(Object.fromEntries(
      await Promise.all(STEMS.map(async (s) => [s, await fetchBytes(config.files[s])] as const)),
    ) as Record<StemId, ArrayBuffer>);
    view.attach(new BufferEngine(buffers.ctx, buffers.buffers), buffers.buffers);
  } catch {
    // file:// forbids reading bytes; the elements still play the files
    try {
      view.attach(await ElementEngine.open(config.files), null);
      picker.hidden = false;
    } catch (err) {
      view.showError(`${(err as Error).message} Choose the two stem files instead.`);
      picker.hidden = false;
    }
  }
  mark("playable");
}

async function fetchBytes(url: string): Promise<ArrayBuffer> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

async function decodeAll(bytes: Record<StemId, ArrayBuffer>) {
  const ctx = openAudioContext();
  try {
    const decoded = await Promise.all(STEMS.map((s) => ctx.decodeAudioData(bytes[s])));
    return { ctx, buffers: { vocals: decoded[0], instrumental: decoded[1] } };
  } catch (err) {
    await ctx.close();
    throw err;
  }
}

function pickFor(stem: StemId, config: LocalConfig, files: File[]): File | undefined {
  const expected = config.files[stem].split(/[\\/]/).pop();
  return files.find((f) => f.name === expected) ?? files.find((f) => f.name.toLowerCase().includes(stem.slice(0, 5)));
}

async function loadPicked(view: MixerView, config: LocalConfig, input: HTMLInputElement, picker: HTMLElement) {
  const files = Array.from(input.files ?? []);
  const chosen = { vocals: pickFor("vocals", config, files), instrumental: pickFor("instrumental", config, files) };
  if (!chosen.vocals || !chosen.instrumental || chosen.vocals === chosen.instrumental) {
    view.showError(`Choose both files: ${config.files.vocals} and ${config.files.instrumental}.`);
    return;
  }
  try {
    const { ctx, buffers } = await decodeAll({
      vocals: await chosen.vocals.arrayBuffer(),
      instrumental: await chosen.instrumental.arrayBuffer(),
    });
    view.showError("");
    view.attach(new BufferEngine(ctx, buffers), buffers);
    picker.hidden = true;
  } catch {
    view.showError("Those files could not be decoded as audio.");
  }
}

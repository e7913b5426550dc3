import { STEMS, type StemId } from "./job";

/** The mix as heard (given gains), rendered deterministically with an OfflineAudioContext. */
export async function renderMix(buffers: Record<StemId, AudioBuffer>, gains: Record<StemId, number>): Promise<AudioBuffer> {
  const sampleRate = buffers.vocals.sampleRate;
  const length = Math.max(...STEMS.map((s) => buffers[s].length));
  const channels = Math.max(...STEMS.map((s) => buffers[s].numberOfChannels));
  const ctx = new OfflineAudioContext(channels, length, sampleRate);
  for (const stem of STEMS) {
    const source = ctx.createBufferSource();
    source.buffer = buffers[stem];
    const gain = ctx.createGain();
    gain.gain.value = gains[stem];
    source.connect(gain).connect(ctx.destination);
    source.start(0);
  }
  return ctx.startRendering();
}

export function rms(buffer: AudioBuffer): number {
  let sum = 0;
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
  }
  return Math.sqrt(sum / (buffer.length * buffer.numberOfChannels || 1));
}

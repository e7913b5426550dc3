export const NEAR_SILENT_DBFS = -40;
const BUCKETS = 1200;

export interface Peaks {
  min: Float32Array;
  max: Float32Array;
  peak: number; // linear, over all channels
}

export function computePeaks(buffer: AudioBuffer, buckets = BUCKETS): Peaks {
  const min = new Float32Array(buckets);
  const max = new Float32Array(buckets);
  const per = buffer.length / buckets;
  let peak = 0;
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let b = 0; b < buckets; b++) {
      const end = Math.min(data.length, Math.floor((b + 1) * per));
      let lo = min[b];
      let hi = max[b];
      for (let i = Math.floor(b * per); i < end; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      min[b] = lo;
      max[b] = hi;
      peak = Math.max(peak, hi, -lo);
    }
  }
  return { min, max, peak };
}

export function toDbfs(linear: number): number {
  return linear > 0 ? 20 * Math.log10(linear) : -Infinity;
}

export function drawWaveform(canvas: HTMLCanvasElement, peaks: Peaks, color: string): void {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  if (!g) return;
  g.clearRect(0, 0, width, height);
  g.fillStyle = color;
  const mid = height / 2;
  const n = peaks.min.length;
  for (let x = 0; x < width; x++) {
    const from = Math.floor((x / width) * n);
    const to = Math.max(from + 1, Math.floor(((x + 1) / width) * n));
    let lo = 0;
    let hi = 0;
    for (let b = from; b < to && b < n; b++) {
      lo = Math.min(lo, peaks.min[b]);
      hi = Math.max(hi, peaks.max[b]);
    }
    const top = mid - hi * mid;
    g.fillRect(x, top, 1, Math.max(1, (hi - lo) * mid));
  }
}

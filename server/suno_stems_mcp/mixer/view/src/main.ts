import "./jitless";
import { AppMode } from "./app-mode";
import { isLocalConfig, startLocal } from "./local-mode";
import { MixerView } from "./mixer-view";
import { rms } from "./render";
import { toBase64 } from "./base64";
import { encodeWav } from "./wav";

function readConfig(): unknown {
  const text = document.getElementById("mixer-config")?.textContent ?? "{}";
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

const config = readConfig();
let app: AppMode | null = null;
const view = new MixerView({
  download: (name, mime, bytes) => app?.download(name, mime, bytes) ?? Promise.resolve(false),
  changed: () => app?.contextUpdated(),
});

if (isLocalConfig(config)) {
  document.documentElement.dataset.mode = "local";
  void startLocal(view, config);
} else {
  document.documentElement.dataset.mode = "app";
  app = new AppMode(view);
  app.start().catch((err: Error) => view.showError(`Could not connect to the host: ${err.message}`));
}

/** Read-only hook for tests: state, marks, and an offline render of the current mix. */
Object.defineProperty(window, "__mixer", {
  value: Object.freeze({
    state: () => view.state(),
    marks: () =>
      performance
        .getEntriesByType("mark")
        .filter((m) => m.name.startsWith("mixer:"))
        .map((m) => ({ name: m.name.slice(6), t: m.startTime })),
    renderMix: async (options: { wav?: boolean } = {}) => {
      const rendered = await view.renderCurrent();
      if (!rendered) return null;
      return {
        rms: { mix: rms(rendered.mix), ...rendered.shares },
        gains: view.state().gains,
        sampleRate: rendered.mix.sampleRate,
        length: rendered.mix.length,
        channels: rendered.mix.numberOfChannels,
        wav: options.wav ? toBase64(encodeWav(rendered.mix)) : undefined,
      };
    },
  }),
});

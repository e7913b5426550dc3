import { App, applyDocumentTheme, applyHostFonts, applyHostStyleVariables, type McpUiHostContext } from "@modelcontextprotocol/ext-apps";
import { toBase64 } from "./base64";
import { debounce } from "./describe";
import { asJob } from "./job";
import type { MixerView } from "./mixer-view";
import { JobSession, mark } from "./session";
import { type CallTool, resultText, type ToolResult } from "./stems";

const CONTEXT_DEBOUNCE_MS = 400;

/** The view inside an MCP Apps host: tool results in, tool calls and model context out. */
export class AppMode {
  readonly app = new App({ name: "suno-stems-mixer", version: "0.1.0" }, {}, { autoResize: true });
  private session: JobSession | null = null;
  private lastContext = "";
  readonly contextUpdated = debounce(() => void this.sendContext(), CONTEXT_DEBOUNCE_MS);

  constructor(private readonly view: MixerView) {}

  async start(): Promise<void> {
    const app = this.app;
    app.ontoolinput = () => {
      if (!this.session) this.view.setStatus("Waiting for the stems job…");
    };
    app.ontoolresult = (params) => this.onResult(params as ToolResult);
    app.onhostcontextchanged = (ctx) => this.applyHostContext(ctx);
    app.onteardown = async () => {
      await this.shutdown();
      return {};
    };
    await app.connect();
    this.applyHostContext(app.getHostContext() ?? {});
  }

  canDownload(): boolean {
    return Boolean(this.app.getHostCapabilities()?.downloadFile);
  }

  async download(name: string, mime: string, bytes: Uint8Array): Promise<boolean> {
    if (!this.canDownload()) return false;
    const result = await this.app.downloadFile({
      contents: [{ type: "resource", resource: { uri: `file:///${name}`, mimeType: mime, blob: toBase64(bytes) } }],
    });
    return !result.isError;
  }

  private onResult(result: ToolResult): void {
    mark("tool-result");
    const job = asJob(result.structuredContent);
    if (!job) {
      if (result.isError) this.view.showError(resultText(result) || "The tool call failed.");
      return;
    }
    if (this.session?.jobId !== job.job_id) {
      void this.session?.close();
      this.lastContext = "";
      this.session = new JobSession(job.job_id, this.view, this.serverToolCaller());
    }
    this.session.update(job);
  }

  private serverToolCaller(): CallTool | null {
    if (!this.app.getHostCapabilities()?.serverTools) return null;
    return (name, args, signal) => this.app.callServerTool({ name, arguments: args }, { signal }) as Promise<ToolResult>;
  }

  private applyHostContext(ctx: McpUiHostContext): void {
    if (ctx.theme) applyDocumentTheme(ctx.theme);
    if (ctx.styles?.variables) applyHostStyleVariables(ctx.styles.variables);
    if (ctx.styles?.css?.fonts) applyHostFonts(ctx.styles.css.fonts);
    this.view.redrawForTheme();
  }

  private async sendContext(): Promise<void> {
    const text = this.view.describe();
    if (!text || text === this.lastContext || !this.app.getHostCapabilities()?.updateModelContext) return;
    this.lastContext = text;
    const state = this.view.state();
    try {
      await this.app.updateModelContext({
        content: [{ type: "text", text }],
        structuredContent: {
          job_id: state.jobId,
          channels: state.channels,
          gains: state.gains,
          playing: state.playing,
          position_seconds: Math.round(Number(state.position)),
        },
      });
    } catch {
      this.lastContext = "";
    }
  }

  private async shutdown(): Promise<void> {
    this.contextUpdated.cancel();
    const session = this.session;
    this.session = null;
    await session?.close();
  }
}

// The host side of MCP Apps for tests, on the official AppBridge: renders a view in a sandboxed srcdoc iframe
// under a CSP, proxies its tools/call to Python, and reports everything the view does to Python.
import { AppBridge, PostMessageTransport, type McpUiHostCapabilities, type McpUiHostContext } from "@modelcontextprotocol/ext-apps/app-bridge";

declare global {
  interface Window {
    __pyCallTool(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>>;
    __pyEvent(kind: string, payload: unknown): Promise<void>;
    __host: unknown;
  }
}

interface LoadOptions {
  csp: string;
  hostContext: McpUiHostContext;
  capabilities: McpUiHostCapabilities;
}

// Runs first inside the view: reports CSP violations and uncaught errors, which the parent cannot observe.
const PROBE = `<script>(function(){
  function send(kind, detail){ try { parent.postMessage({__mixerHarness: kind, detail: detail}, "*"); } catch (e) {} }
  document.addEventListener("securitypolicyviolation", function(e){
    send("csp", {directive: e.violatedDirective, effective: e.effectiveDirective, blocked: e.blockedURI,
                 source: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition});
  });
  window.addEventListener("error", function(e){ send("error", {message: String(e.message), source: e.filename, line: e.lineno}); });
  window.addEventListener("unhandledrejection", function(e){ send("error", {message: "unhandled rejection: " + String(e.reason && (e.reason.stack || e.reason))}); });
})();</script>`;

function escapeAttr(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
}

function withCsp(html: string, csp: string): string {
  const head = `<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">${PROBE}`;
  const match = /<head[^>]*>/i.exec(html);
  if (!match) return `<!doctype html><html><head>${head}</head><body>${html}</body></html>`;
  const at = match.index + match[0].length;
  return html.slice(0, at) + head + html.slice(at);
}

let bridge: AppBridge | null = null;
let frame: HTMLIFrameElement | null = null;

window.addEventListener("message", (event) => {
  const data = event.data as { __mixerHarness?: string; detail?: unknown } | null;
  if (frame && event.source === frame.contentWindow && data && typeof data.__mixerHarness === "string") {
    void window.__pyEvent(data.__mixerHarness, data.detail);
  }
});

async function load(html: string, options: LoadOptions): Promise<void> {
  frame?.remove();
  frame = document.createElement("iframe");
  frame.id = "view";
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("allow", "autoplay");
  document.body.appendChild(frame);

  bridge = new AppBridge(null, { name: "mixer-test-host", version: "1.0.0" }, options.capabilities, {
    hostContext: options.hostContext,
  });
  const record = (kind: string) => (payload: unknown) => void window.__pyEvent(kind, payload);
  bridge.oninitialized = () =>
    void window.__pyEvent("initialized", { app: bridge?.getAppVersion(), capabilities: bridge?.getAppCapabilities() });
  bridge.onsizechange = (params) => {
    // as hosts do: the frame follows the height the view reports
    if (frame && typeof params.height === "number") frame.style.height = `${Math.ceil(params.height)}px`;
    record("size-changed")(params);
  };
  bridge.onloggingmessage = record("log");
  bridge.onrequestteardown = record("request-teardown");
  bridge.oncalltool = async (params) => {
    void window.__pyEvent("tools/call", { name: params.name, arguments: params.arguments ?? {} });
    return (await window.__pyCallTool(params.name, params.arguments ?? {})) as never;
  };
  bridge.onupdatemodelcontext = async (params) => {
    await window.__pyEvent("update-model-context", params);
    return {};
  };
  bridge.ondownloadfile = async (params) => {
    await window.__pyEvent("download-file", params);
    return {};
  };
  bridge.onmessage = async (params) => {
    await window.__pyEvent("message", params);
    return {};
  };
  bridge.onopenlink = async (params) => {
    await window.__pyEvent("open-link", params);
    return {};
  };
  await bridge.connect(new PostMessageTransport(frame.contentWindow!, frame.contentWindow!));
  frame.srcdoc = withCsp(html, options.csp);
}

function live(): AppBridge {
  if (!bridge) throw new Error("no view loaded");
  return bridge;
}

window.__host = {
  load,
  sendToolInput: (args: Record<string, unknown>) => live().sendToolInput({ arguments: args }),
  sendToolResult: (result: Record<string, unknown>) => live().sendToolResult(result as never),
  setHostContext: (ctx: McpUiHostContext) => live().setHostContext({ ...ctx }),
  teardown: async () => {
    await live().teardownResource({});
    void window.__pyEvent("teardown-complete", {});
  },
};

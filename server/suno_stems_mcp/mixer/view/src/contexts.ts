/** Every AudioContext the view opens goes through here, so tests can see none leaks or doubles. */
const open = new Set<AudioContext>();
let created = 0;

export function openAudioContext(): AudioContext {
  const ctx = new AudioContext();
  created++;
  open.add(ctx);
  ctx.addEventListener("statechange", () => {
    if (ctx.state === "closed") open.delete(ctx);
  });
  return ctx;
}

export function contextCounts(): { created: number; open: number } {
  return { created, open: [...open].filter((c) => c.state !== "closed").length };
}

import type { StemId } from "./job";

export interface ChannelState {
  volume: number; // 0..1, the slider
  muted: boolean;
  solo: boolean;
}

export type Channels = Record<StemId, ChannelState>;

/** DAW rule: if any channel is soloed, exactly the soloed ones sound (solo beats mute); else the unmuted ones. */
export function effectiveGains(channels: Channels): Record<StemId, number> {
  const anySolo = Object.values(channels).some((c) => c.solo);
  const gain = (c: ChannelState) => ((anySolo ? c.solo : !c.muted) ? c.volume : 0);
  return { vocals: gain(channels.vocals), instrumental: gain(channels.instrumental) };
}

export function defaultChannels(): Channels {
  return {
    vocals: { volume: 1, muted: false, solo: false },
    instrumental: { volume: 1, muted: false, solo: false },
  };
}

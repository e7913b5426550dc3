type Base64Ctor = { fromBase64?: (text: string) => Uint8Array };
type Base64Bytes = { toBase64?: () => string };

export function fromBase64(text: string): Uint8Array {
  const native = (Uint8Array as unknown as Base64Ctor).fromBase64;
  if (native) return native(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes: Uint8Array): string {
  const native = (bytes as unknown as Base64Bytes).toBase64;
  if (native) return native.call(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Provided by scripts/build.mjs: cni/kube-fallback.ts bundled, Brotli-compressed, base64. */
declare module 'meshless-embedded:kube-fallback' {
  const packed: string;
  export default packed;
}

// Writes a Brotli (.br) and a gzip (.gz) copy next to each text asset in dist/assets, so
// `sage serve` answers a browser that accepts them with the compressed file (no work per
// request; Lighthouse found the 360 KB entry chunk sent uncompressed). The deploy leaves
// them out: CloudFront compresses by itself.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const assets = new URL("../dist/assets/", import.meta.url).pathname;
const TEXT = /\.(js|css|svg|json|html|txt)$/;
let plain = 0;
let brotli = 0;
for (const name of readdirSync(assets)) {
  if (!TEXT.test(name)) continue;
  const body = readFileSync(join(assets, name));
  const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } });
  const gz = gzipSync(body, { level: 9 });
  // a copy that is not smaller is not worth a second file
  if (br.length < body.length) writeFileSync(join(assets, `${name}.br`), br);
  if (gz.length < body.length) writeFileSync(join(assets, `${name}.gz`), gz);
  plain += body.length;
  brotli += Math.min(br.length, body.length);
}
console.log(`precompressed assets: ${(plain / 1024).toFixed(0)} KB -> ${(brotli / 1024).toFixed(0)} KB brotli`);

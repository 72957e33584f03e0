// Writes crds/dockerrepositories.yaml and crds/promotions.yaml from the zod
// schemas (src/operator/crd-schema.ts, compiled to dist/ by `npm run build`).
// Run it as `npm run crds`, which builds first.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { renderCrdFiles } = await import(join(root, 'dist/operator/crd-schema.js'));
const out = join(root, 'crds');
mkdirSync(out, { recursive: true });
for (const [name, text] of Object.entries(renderCrdFiles())) {
  writeFileSync(join(out, name), text);
  console.log(`wrote crds/${name}`);
}

// Builds the cloudco-js component with ComponentizeJS (`npm ci` here first).
//
//   node examples/js-cloudco/build.mjs [OUT]     # default OUT: target/guests/cloudco-js.wasm
//
// The provider definition (cloudco-js.json) is inlined into the source as DEFINITION: the
// sandbox has no files at run time. The combined source is written next to OUT.
import { readFile, writeFile, mkdir, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { componentize } from '@bytecodealliance/componentize-js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const out = resolve(process.argv[2] ?? join(repo, 'target/guests/cloudco-js.wasm'));
await mkdir(dirname(out), { recursive: true });

const definition = await readFile(join(here, 'cloudco-js.json'), 'utf8');
JSON.parse(definition); // fail the build, not the component, on a broken definition
const app = await readFile(join(here, 'app.js'), 'utf8');
const sourcePath = `${out}.src.js`;
await writeFile(sourcePath, `const DEFINITION = ${JSON.stringify(definition)};\n${app}`);

const { component } = await componentize({
  sourcePath,
  witPath: join(repo, 'wit'),
  worldName: 'provider-component',
  // fetch() (wasi:http/outgoing-handler, sent by cpi's gate under the grants); no
  // incoming-handler: the component serves nothing.
  disableFeatures: ['fetch-event'],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
console.error(`built ${out} (${component.byteLength} bytes)`);

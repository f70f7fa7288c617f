// Imports a file with Insomnia's importer (the npm package insomnia-importers,
// which Insomnium's importer descends from) and prints, as JSON, what an
// Insomnium user would get: the importer's id, anything it logged (the
// OpenAPI importer logs a document that fails validation and goes on), the
// environment, and each request with its templates rendered in that
// environment. tests/insomnium_e2e_test.go runs it.
//
//	node import.cjs PACKAGE_DIR FILE [NAME=VALUE ...]
//
// NAME=VALUE sets an environment variable, as a user does in Insomnium's
// environment editor (the bearer token, say).

'use strict';

const fs = require('node:fs');

const [pkg, file, ...sets] = process.argv.slice(2);
const { convert } = require(pkg);

// The importer reports a failed validation on the console only.
const logged = [];
for (const level of ['log', 'warn', 'error']) {
  console[level] = (...args) => logged.push(args.map(String).join(' '));
}

// Insomnium renders {{ _.name }}; the npm package's templates are {{ name }}.
// Values may themselves be templates (base_url is), so render until none is
// left, a bounded number of times; an unknown name is an error, as it is in
// Insomnium.
function render(value, env) {
  let s = String(value);
  for (let i = 0; i < 8 && s.includes('{{'); i++) {
    s = s.replace(/\{\{\s*(?:_\.)?([\w.-]+)\s*\}\}/g, (_, name) => {
      if (!(name in env)) throw new Error(`${value}: no environment variable "${name}"`);
      return String(env[name]);
    });
  }
  if (s.includes('{{')) throw new Error(`${value}: still a template after rendering: ${s}`);
  return s;
}

(async () => {
  const result = await convert(fs.readFileSync(file, 'utf8'));
  const resources = result.data.resources;
  // The workspace's base environment, then the first sub-environment: the
  // one Insomnium makes active on import.
  const envs = resources.filter(r => r._type === 'environment');
  const base = envs.find(e => !String(e.parentId).startsWith('__BASE_ENVIRONMENT_ID__') && !String(e.parentId).startsWith('env_'));
  const sub = envs.find(e => e !== base);
  const env = { ...(base && base.data), ...(sub && sub.data) };
  for (const kv of sets) {
    const i = kv.indexOf('=');
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const requests = resources.filter(r => r._type === 'request').map(r => {
    const auth = r.authentication || {};
    return {
      ...r,
      rendered: {
        url: render(r.url, env),
        headers: (r.headers || []).filter(h => !h.disabled).map(h => ({ name: render(h.name, env), value: render(h.value, env) })),
        // Insomnium sends a bearer token as "<prefix or Bearer> <token>".
        authorization: auth.type === 'bearer' ? `${auth.prefix || 'Bearer'} ${render(auth.token, env)}` : '',
      },
    };
  });
  process.stdout.write(JSON.stringify({ importer: result.type.id, logged, environment: env, requests }, null, 1) + '\n');
})().catch(err => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});

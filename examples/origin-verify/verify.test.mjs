// node --test examples/origin-verify/verify.test.mjs   (the vectors are shared with cargo test and test_verify.py)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { verify } from './verify.mjs';

const V = JSON.parse(readFileSync(new URL('./vectors.json', import.meta.url), 'utf8'));
const identityHeaders = (identity) => {
  if (identity === '') return {};
  const [k, w, s, e, g] = identity.split('\n');
  return { 'x-keyward-key-id': k, 'x-keyward-workspace': w, 'x-keyward-scopes': s, 'x-keyward-environment': e, 'x-keyward-groups': g };
};

test('every documented vector verifies, at t and at the edges of the window', () => {
  assert.equal(V.vectors.length, 5);
  for (const v of V.vectors) {
    const headers = { ...identityHeaders(v.identity), 'x-keyward-signature': v.header };
    for (const now of [v.t, v.t + 300, v.t - 300]) {
      assert.equal(verify(headers, v.method, v.path_and_query, V.secret, now), true, v.name);
    }
    assert.equal(verify(headers, v.method, v.path_and_query, V.secret, v.t + 301), false, `${v.name}: stale`);
  }
});

test('shared request table', () => {
  assert.ok(V.requests.length >= 30);
  for (const r of V.requests) {
    const got = verify(r.headers, r.method, r.path_and_query, r.secrets ?? V.secret, r.now, V.tolerance_seconds);
    assert.equal(got, r.valid, r.name);
  }
});

test('tampering with method, path, query, each identity header or t fails', () => {
  const v = V.vectors.find((x) => x.name === 'keyed GET by a key in two groups'); // every identity field non-empty
  const headers = { ...identityHeaders(v.identity), 'x-keyward-signature': v.header };
  const ok = (h, m = v.method, pq = v.path_and_query, now = v.t) => verify(h, m, pq, V.secret, now);
  assert.equal(ok(headers), true);
  assert.equal(ok(headers, 'PUT'), false);
  assert.equal(ok(headers, v.method, '/projects/41?x=1'), false);
  assert.equal(ok(headers, v.method, '/projects/42?x=10'), false);
  for (const name of ['x-keyward-key-id', 'x-keyward-workspace', 'x-keyward-scopes', 'x-keyward-environment', 'x-keyward-groups']) {
    assert.equal(ok({ ...headers, [name]: headers[name] + 'x' }), false, name);
    const without = { ...headers };
    delete without[name];
    assert.equal(ok(without), false, `${name} removed`);
  }
  const later = v.header.replace(`t=${v.t}`, `t=${v.t + 5}`);
  assert.equal(ok({ ...headers, 'x-keyward-signature': later }, v.method, v.path_and_query, v.t + 5), false);
  assert.equal(ok(headers, v.method, v.path_and_query, v.t + 3600), false, 'stale');
  assert.equal(verify(headers, v.method, v.path_and_query, 'wrong', v.t), false, 'wrong secret');
});

// Verifies X-Keyward-Signature (docs/origin-signing.md). headers: lower-case names -> values;
// pathAndQuery: the request target exactly as received; secret: a string, or [new, old] in a rotation.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verify(headers, method, pathAndQuery, secret, nowSeconds, toleranceSeconds = 300) {
  let t = null;
  const given = [];
  for (const item of (headers['x-keyward-signature'] ?? '').split(',')) {
    const [k, ...v] = item.split('=');
    if (k === 't' && (t !== null || !/^[0-9]{1,15}$/.test(v.join('=')))) return false;
    if (k === 't') t = v.join('=');
    if (k === 'v1') given.push(Buffer.from(v.join('=')));
  }
  if (t === null || !(Math.abs(nowSeconds - Number(t)) <= toleranceSeconds)) return false;
  const id = headers['x-keyward-key-id'];
  const identity = id === undefined ? ''
    : [id, ...['workspace', 'scopes', 'environment', 'groups'].map((h) => headers['x-keyward-' + h] ?? '')].join('\n');
  const signed = ['v1', t, method, pathAndQuery, identity].join('\n');
  for (const s of [].concat(secret)) {
    const want = Buffer.from(createHmac('sha256', s).update(signed).digest('hex'));
    if (given.some((g) => g.length === want.length && timingSafeEqual(g, want))) return true;
  }
  return false;
}

// The admin page (web/admin/) end to end in headless Chromium, against a running worker.
//
//   node tests/browser/admin-page.mjs <base_url> <admin_token> <workspace>
//
// Run by the e2e trial `browser::admin_page_in_chromium` (tests/e2e/cases/browser.rs), which starts
// wrangler dev and the echo origin and seeds <workspace> with a few keys. Needs Debian's chromium
// (scripts/setup.sh installs it; CHROMIUM overrides the path) and playwright-core, which downloads
// no browser. KEYWARD_SCREENSHOT_DIR=<dir> also writes the README's screenshots there.
//
// Progress goes to stderr. stdout carries one JSON line for the harness, {"secrets": [...]}: the
// secrets the page showed, so that the run's final check can look for them in logs and at the
// origin. Exit status 0 only when every check passed.
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, adminToken, workspace] = process.argv.slice(2);
if (!base || !adminToken || !workspace) {
  console.error('usage: node tests/browser/admin-page.mjs <base_url> <admin_token> <workspace>');
  process.exit(2);
}
const screenshotDir = process.env.KEYWARD_SCREENSHOT_DIR || '';
const DEADLINE_MS = 180_000;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
  + "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const log = (...a) => console.error('admin-page:', ...a);
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// A fresh client address per gateway call (documentation range; a header value only), as the Rust
// harness does, so refusals here never add up to a failed-attempt budget.
const clientAddress = () => `2001:db8::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;

async function gateway(secret) {
  const path = `/echo/page-${randomBytes(6).toString('hex')}`;
  const resp = await fetch(base + path, {
    headers: { Authorization: `Bearer ${secret}`, 'CF-Connecting-IP': clientAddress() },
  });
  await resp.arrayBuffer();
  return { status: resp.status, fromOrigin: resp.headers.get('x-echo-origin') === 'keyward-e2e' };
}

async function expectGateway(secret, status, what) {
  const got = await gateway(secret);
  check(got.status === status, `${what}: gateway answered ${got.status}, expected ${status}`);
  if (status === 200) check(got.fromOrigin, `${what}: the 200 did not come from the echo origin`);
  log(`${what}: gateway ${got.status}`);
}

async function adminApi(method, path, body) {
  const sep = path.includes('?') ? '&' : '?';
  const resp = await fetch(`${base}${path}${sep}workspace=${workspace}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  check(resp.ok, `${method} ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const secrets = [];
const deadline = setTimeout(() => {
  log(`no result within ${DEADLINE_MS / 1000} s`);
  process.exit(3);
}, DEADLINE_MS);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
});
let failed = false;
let page = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 }, deviceScaleFactor: 1 });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(base).origin });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);

  // Everything the page says on the console, every script error, CSP violation and request.
  const problems = [];
  let expectedResourceErrors = 0;
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    const text = msg.text();
    // A deliberate bad request below makes Chromium log the 4xx it got; only those are allowed.
    if (expectedResourceErrors > 0 && /Failed to load resource: the server responded with a status of 4\d\d/.test(text)) {
      expectedResourceErrors -= 1;
      return;
    }
    problems.push(`console ${msg.type()}: ${text}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const origin = new URL(base).origin;
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));

  // 1. The page and its headers.
  const resp = await page.goto(`${base}/admin/`);
  check(resp.status() === 200, `GET /admin/ answered ${resp.status()}`);
  const headers = resp.headers();
  check((headers['content-security-policy'] || '').startsWith(CSP), `CSP header: ${headers['content-security-policy']}`);
  check(headers['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff');
  check(headers['referrer-policy'] === 'no-referrer', 'Referrer-Policy: no-referrer');
  check((headers['content-type'] || '').startsWith('text/html'), 'content type of the page');

  // 2. Sign in with the root token (kept in sessionStorage only).
  await page.getByLabel('Admin token').fill(adminToken);
  await page.getByLabel(/^Workspace/).fill(workspace);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Keys' }).waitFor();
  const rows = page.locator('#keys-table tbody tr');
  await rows.first().waitFor();
  const seeded = await rows.count();
  check(seeded >= 1, 'the seeded keys are listed');
  check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
  log(`signed in; ${seeded} keys listed`);

  // 3. Create a key from a preset with an expiry; the secret is shown once.
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create key' });
  await dialog.getByLabel('Name', { exact: true }).fill('browser made');
  await dialog.getByLabel(/^Description/).fill('made through the admin page');
  await dialog.getByLabel('Preset', { exact: true }).selectOption('sdk');
  await dialog.getByLabel(/^Scopes/).fill('deployments:viewer');
  await dialog.getByLabel('Expires', { exact: true }).selectOption('90d');
  if (screenshotDir) {
    mkdirSync(screenshotDir, { recursive: true });
    await page.screenshot({ path: join(screenshotDir, 'admin-create.png') });
  }
  await dialog.getByRole('button', { name: 'Create' }).click();
  const secretDialog = page.getByRole('dialog', { name: 'Copy the new key now' });
  await secretDialog.waitFor();
  const secret = await secretDialog.getByLabel('Secret', { exact: true }).inputValue();
  check(/^kw_live_[0-9A-Za-z]{43}_[0-9A-Za-z]{6}$/.test(secret), 'the dialog shows a key secret');
  secrets.push(secret);
  check(!page.url().includes(secret), 'the secret is not in the URL');
  check(!JSON.stringify(await page.evaluate(() => ({ ...sessionStorage }))).includes(secret), 'not in sessionStorage');
  await secretDialog.getByRole('button', { name: 'Copy' }).click();
  await secretDialog.getByRole('status').filter({ hasText: 'Copied' }).waitFor();
  check(await page.evaluate(() => navigator.clipboard.readText()) === secret, 'the Copy button copies the secret');
  if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'admin-secret.png') });
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await secretDialog.waitFor({ state: 'hidden' });
  // The dialog's close event (which clears the secret) fires in a task after it is hidden.
  await page.waitForFunction(() => document.getElementById('secret-value').value === '', null, { timeout: 2000 })
    .catch(() => check(false, 'the secret is cleared when the dialog closes'));
  check(!(await page.content()).includes(secret), 'the secret is nowhere in the DOM afterwards');
  const row = rows.filter({ hasText: 'browser made' });
  await row.waitFor();
  check(await row.getByText('active').count() === 1, 'the new key is listed as active');
  check(await row.getByText('events:write').count() === 1, "the preset's scopes are listed");
  check(await row.getByText('deployments:viewer').count() === 1, 'the custom scope is listed');
  log('created a key through the page');

  // 4. The secret works at the gateway.
  await expectGateway(secret, 200, 'new key');
  if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'admin-keys.png') });

  // 5. An API error is shown with its problem title and detail (and the dialog stays open).
  await page.getByRole('button', { name: 'Create key' }).click();
  await dialog.getByLabel('Name', { exact: true }).fill('browser made');
  await dialog.getByLabel(/^Scopes/).fill('events:write');
  expectedResourceErrors = 1;
  await dialog.getByRole('button', { name: 'Create' }).click();
  const alert = dialog.getByRole('alert');
  await alert.filter({ hasText: 'Conflict' }).waitFor();
  const shown = await alert.textContent();
  check(shown.includes('already exists'), `the problem detail is shown: ${shown}`);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  log('a 409 name-conflict is shown in the dialog');

  // 6. Edit: rename, and narrow the scopes.
  await row.getByRole('button', { name: 'Edit browser made' }).click();
  const edit = page.getByRole('dialog', { name: 'Edit key “browser made”' });
  await edit.getByLabel('Name', { exact: true }).fill('browser edited');
  await edit.getByLabel(/^Scopes/).fill('projects:viewer events:write');
  await edit.getByRole('button', { name: 'Save' }).click();
  const edited = rows.filter({ hasText: 'browser edited' });
  await edited.waitFor();
  check(await edited.getByText('deployments:viewer').count() === 0, 'the edit narrowed the scopes');

  // 7. Deactivate and reactivate.
  await edited.getByRole('button', { name: 'Deactivate browser edited' }).click();
  await edited.getByText('disabled', { exact: true }).waitFor();
  await expectGateway(secret, 401, 'deactivated key');
  await edited.getByRole('button', { name: 'Reactivate browser edited' }).click();
  await edited.getByText('active', { exact: true }).waitFor();
  await expectGateway(secret, 200, 'reactivated key');

  // 8. Rotate with a grace period: a second secret, shown once; both work.
  await edited.getByRole('button', { name: 'Rotate browser edited' }).click();
  const rotate = page.getByRole('dialog', { name: 'Rotate “browser edited”?' });
  await rotate.getByLabel(/Old key keeps working/).fill('3600');
  await rotate.getByRole('button', { name: 'Rotate key' }).click();
  await secretDialog.waitFor();
  const rotated = await secretDialog.getByLabel('Secret', { exact: true }).inputValue();
  check(rotated !== secret && rotated.startsWith('kw_live_'), 'rotation shows a new secret');
  secrets.push(rotated);
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await expectGateway(rotated, 200, 'rotated key');
  await expectGateway(secret, 200, 'old key within its grace');

  // 9. Revoke the new key through the page (after a confirmation): refused at once.
  const current = rows.filter({ hasText: 'browser edited' }).filter({ hasNotText: 'successor issued' });
  await current.getByRole('button', { name: 'Revoke browser edited' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke “browser edited”?' });
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await expectGateway(rotated, 200, 'revoke cancelled');
  await current.getByRole('button', { name: 'Revoke browser edited' }).click();
  await confirm.getByRole('button', { name: 'Revoke key' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await rows.filter({ hasText: 'revoked' }).first().waitFor();
  await expectGateway(rotated, 401, 'revoked key');
  // The old key too, through the page.
  const old = rows.filter({ hasText: 'browser edited' }).filter({ hasText: 'successor issued' });
  await old.getByRole('button', { name: 'Revoke browser edited' }).click();
  await confirm.getByRole('button', { name: 'Revoke key' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await expectGateway(secret, 401, 'revoked old key');

  // 10. Presets: create a workspace preset, then delete it.
  await page.getByRole('button', { name: 'Presets' }).click();
  const presetRows = page.locator('#presets-table tbody tr');
  await presetRows.filter({ hasText: 'agent-runner' }).waitFor();
  const presetForm = page.getByRole('region', { name: 'Presets' });
  await presetForm.getByLabel('Name', { exact: true }).fill('page-preset');
  await presetForm.getByLabel('Description', { exact: true }).fill('made by the browser test');
  await presetForm.getByLabel(/^Scopes/).fill('projects:viewer');
  await page.getByRole('button', { name: 'Create preset' }).click();
  await presetRows.filter({ hasText: 'page-preset' }).waitFor();
  await page.getByRole('button', { name: 'Delete preset page-preset' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete preset' }).click();
  await presetRows.filter({ hasText: 'page-preset' }).waitFor({ state: 'detached' });

  // 10a. Groups: create one, put a new key in it through the key dialog, delete the group (the key
  // leaves it), all through the page.
  await page.getByRole('button', { name: 'Groups', exact: true }).click();
  const groupRows = page.locator('#groups-table tbody tr');
  const groupForm = page.getByRole('region', { name: 'Groups' });
  await groupForm.getByLabel(/^Name/).fill('page-group');
  await groupForm.getByLabel('Description', { exact: true }).fill('made by the browser test');
  await page.getByRole('button', { name: 'Create group' }).click();
  await groupRows.filter({ hasText: 'page-group' }).waitFor();
  await page.getByRole('button', { name: 'Keys', exact: true }).click();
  await page.getByRole('button', { name: 'Create key' }).click();
  await dialog.getByLabel('Name', { exact: true }).fill('grouped key');
  await dialog.getByLabel('Preset', { exact: true }).selectOption('read-only');
  await dialog.getByLabel(/^Scopes/).fill('');
  await dialog.getByLabel(/^Groups/).fill('page-group');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await secretDialog.waitFor();
  const groupedSecret = await secretDialog.getByLabel('Secret', { exact: true }).inputValue();
  secrets.push(groupedSecret);
  await secretDialog.getByRole('button', { name: 'I have stored it' }).click();
  await secretDialog.waitFor({ state: 'hidden' });
  const groupedRow = rows.filter({ hasText: 'grouped key' });
  await groupedRow.filter({ hasText: 'groups: page-group' }).waitFor();
  await expectGateway(groupedSecret, 200, 'key in a group');
  await page.getByRole('button', { name: 'Groups', exact: true }).click();
  await page.getByRole('button', { name: 'Delete group page-group' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete group' }).click();
  await groupRows.filter({ hasText: 'page-group' }).waitFor({ state: 'detached' });
  const groupedObj = (await adminApi('GET', '/admin/v1/keys?limit=100')).items.find((k) => k.name === 'grouped key');
  check(groupedObj && groupedObj.groups.length === 0, `the key left the deleted group: ${JSON.stringify(groupedObj)}`);
  // The tab reloads the list; until then the old row (still naming the group) is in the table.
  await page.getByRole('button', { name: 'Keys', exact: true }).click();
  await groupedRow.filter({ hasText: 'groups:' }).waitFor({ state: 'detached' })
    .catch(() => check(false, 'the key list shows no group any more'));
  await groupedRow.waitFor();
  log('groups: created, joined through the key dialog, deleted');

  // 10b. Credits: the workspace's balance and usage, and a top-up (root token) that the API records.
  const before = await adminApi('GET', '/admin/v1/credits');
  await page.getByRole('button', { name: 'Credits', exact: true }).click();
  const balance = page.locator('#credits-balance');
  await balance.filter({ hasText: before.balance.toLocaleString('en-US') }).waitFor();
  check(await page.locator('#credits-spent').textContent() === before.spent.toLocaleString('en-US'), 'spent shown');
  await page.getByLabel(/^Credits to add/).fill('0');
  await page.getByRole('button', { name: 'Add credits' }).click();
  await page.getByRole('alert').filter({ hasText: 'Invalid amount' }).waitFor();
  await page.getByLabel(/^Credits to add/).fill('1250');
  await page.getByRole('button', { name: 'Add credits' }).click();
  await page.getByText('Added 1,250 credits').waitFor();
  const after = await adminApi('GET', '/admin/v1/credits');
  check(after.balance === before.balance + 1250 && after.topped_up === before.topped_up + 1250,
    `the top-up reached the counter: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
  await balance.filter({ hasText: after.balance.toLocaleString('en-US') }).waitFor();
  log(`credits: balance ${before.balance} -> ${after.balance}`);

  // 11. The audit log shows what the page did.
  await page.getByRole('button', { name: 'Audit log' }).click();
  const auditRows = page.locator('#audit-table tbody tr');
  await auditRows.filter({ hasText: 'key.revoke' }).first().waitFor();
  for (const action of ['key.create', 'key.update', 'key.deactivate', 'key.reactivate', 'key.rotate', 'preset.delete', 'group.create', 'group.delete', 'credits.topup']) {
    check(await auditRows.filter({ hasText: action }).count() >= 1, `audit shows ${action}`);
  }

  // 12. Paging: more keys (and audit entries) than one page; next and previous pages.
  const extra = [];
  for (let i = 0; i < 25; i++) {
    extra.push(adminApi('POST', '/admin/v1/keys', { name: `bulk key ${String(i).padStart(2, '0')}`, preset: 'read-only' }));
  }
  for (const k of await Promise.all(extra)) secrets.push(k.key);
  await page.getByRole('button', { name: 'Keys', exact: true }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByRole('button', { name: 'Next page' }).and(page.locator(':enabled')).waitFor();
  const firstPage = await rows.allTextContents();
  check(firstPage.length === 25, `a page holds 25 keys, got ${firstPage.length}`);
  // The buttons are disabled while a page loads, so each check waits for the rows first: a wait for
  // "disabled" alone could be met by the load and miss a button left enabled after it.
  const prevButton = page.getByRole('button', { name: 'Previous page' });
  const nextButton = page.getByRole('button', { name: 'Next page' });
  await nextButton.click();
  await page.waitForFunction(
    (first) => [...document.querySelectorAll('#keys-table tbody tr')].every((r) => !first.includes(r.textContent)),
    firstPage);
  await prevButton.and(page.locator(':enabled')).waitFor();
  const secondPage = await rows.allTextContents();
  check(secondPage.length >= 1 && !secondPage.some((r) => firstPage.includes(r)), 'page 2 holds other keys');
  if (secondPage.length < 25) check(await nextButton.isDisabled(), 'Next page is disabled on the last page');
  await prevButton.click();
  await page.waitForFunction(
    (first) => [...document.querySelectorAll('#keys-table tbody tr')].map((r) => r.textContent).join('\n') === first.join('\n'),
    firstPage);
  check(await prevButton.isDisabled(), 'Previous page is disabled back on the first page');
  check(await nextButton.isEnabled(), 'Next page is enabled back on the first page');
  log(`paging: ${firstPage.length} + ${secondPage.length} keys`);

  await page.getByRole('button', { name: 'Audit log' }).click();
  await page.getByRole('button', { name: 'Next page' }).and(page.locator(':enabled')).waitFor();
  await page.getByRole('button', { name: 'Next page' }).click();
  await auditRows.filter({ hasText: 'key.revoke' }).first().waitFor();

  // 13. Sign out clears the token.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  check(await page.evaluate(() => sessionStorage.length) === 0, 'sign-out empties sessionStorage');
  await page.reload();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  // 14. A wrong token is refused with the API's problem, and nothing is kept.
  expectedResourceErrors = 1;
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByLabel(/^Workspace/).fill(workspace);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Invalid token' }).waitFor();
  check(await page.evaluate(() => sessionStorage.length) === 0, 'a refused token is not kept');

  // 15. A workspace admin key signs in without naming its workspace.
  const adminKey = await adminApi('POST', '/admin/v1/keys', {
    name: 'page admin', scopes: ['keys:admin', 'projects:viewer', 'events:write'],
  });
  secrets.push(adminKey.key);
  await page.getByLabel('Admin token').fill(adminKey.key);
  await page.getByLabel(/^Workspace/).fill('');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('signed in with an admin key').waitFor();
  await rows.filter({ hasText: 'page admin' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  log('wrong token refused; admin key signed in and out');

  // Nothing went wrong on the page, and it talked to nobody else.
  const foreign = requested.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:'));
  check(foreign.length === 0, `requests to another origin: ${foreign.join(', ')}`);
  check(!requested.some((u) => secrets.some((s) => u.includes(s))), 'no request URL carries a secret');
  check(problems.length === 0, `console errors, warnings or CSP violations:\n  ${problems.join('\n  ')}`);

  // The policy is enforced, and the listeners above would have seen a violation: an injected inline
  // style is refused and reported, and an HTML sink throws (Trusted Types) instead of parsing.
  const injected = await page.evaluate(() => {
    const style = document.createElement('style');
    style.textContent = 'body { color: rgb(255, 0, 0) }';
    document.head.append(style);
    let htmlSinkThrew = false;
    try {
      document.body.insertAdjacentHTML('beforeend', '<b id="injected">x</b>');
    } catch (e) {
      htmlSinkThrew = true;
    }
    return { color: getComputedStyle(document.body).color, htmlSinkThrew, found: !!document.getElementById('injected') };
  });
  check(injected.color !== 'rgb(255, 0, 0)' && injected.htmlSinkThrew && !injected.found,
    `injected code was refused: ${JSON.stringify(injected)}`);
  // The violation event is queued as a task and its console line reaches us later still: wait for it.
  const reported = () => problems.some((p) => p.includes('CSP violation: style-src'));
  for (let waited = 0; !reported() && waited < 5000; waited += 50) await page.waitForTimeout(50);
  check(reported(), `the violation was reported: ${problems}`);
  log(`all checks passed (${requested.length} requests)`);
} catch (e) {
  failed = true;
  log(e.stack || String(e));
  // What the page showed, for the failure message (secrets are only ever in the dialog's input).
  if (page) log(`page text at the failure:\n${await page.locator('body').innerText().catch(() => '?')}`);
} finally {
  await browser.close();
  clearTimeout(deadline);
}
process.stdout.write(`${JSON.stringify({ secrets })}\n`);
process.exit(failed ? 1 : 0);

// keyward admin page: plain DOM code over the admin API (docs/api.md), no framework, no build.
// Rules kept throughout, because the page holds an admin token:
// - the token lives in sessionStorage only (this tab), and sign-out removes it;
// - a key secret is only ever put into the secret dialog's input, cleared when the dialog closes;
//   never into storage, the URL, the history or the console;
// - text from the API is only ever set with textContent (the CSP also enforces Trusted Types,
//   so an HTML sink would throw instead of running injected markup).
'use strict';

(() => {
  const TOKEN = 'keyward.admin.token';
  const WORKSPACE = 'keyward.admin.workspace';
  const PAGE_SIZE = 25;

  const $ = (id) => document.getElementById(id);

  /** Builds an element: h('td', {class: 'x'}, 'text', child, ...). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // ---- API ----------------------------------------------------------------------------------

  /** A failed call: the problem+json body (RFC 9457) when there is one. */
  class Problem extends Error {
    constructor(status, body) {
      super((body && body.title) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, body) {
    const token = sessionStorage.getItem(TOKEN);
    if (!token) throw new Problem(401, { title: 'Not signed in', detail: 'Sign in with an admin token.' });
    const url = new URL(path, location.origin);
    const ws = sessionStorage.getItem(WORKSPACE);
    if (ws) url.searchParams.set('workspace', ws);
    const init = {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json, application/problem+json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      throw new Problem(0, { title: 'Network error', detail: 'The worker could not be reached.' });
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      throw new Problem(resp.status, data && typeof data === 'object' ? data : { detail: text.slice(0, 300) });
    }
    return data;
  }

  const query = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  // ---- Messages -----------------------------------------------------------------------------

  /** Where an error goes: inside the open modal dialog if any (the rest of the page is inert). */
  function errorBox() {
    const open = document.querySelector('dialog[open] [data-error]');
    return open || $('error');
  }

  function clearErrors() {
    for (const box of document.querySelectorAll('[data-error]')) {
      box.replaceChildren();
      box.hidden = true;
    }
  }

  function showError(e) {
    const box = errorBox();
    const p = e instanceof Problem ? e.body : { title: 'Unexpected error', detail: String(e && e.message) };
    const title = p.title || (e.status ? `HTTP ${e.status}` : 'Error');
    const items = [];
    if (Array.isArray(p.errors)) {
      for (const fe of p.errors) items.push(`${fe.field}: ${fe.message}`);
    }
    if (Array.isArray(p.scopes) && p.scopes.length) items.push(`scopes: ${p.scopes.join(' ')}`);
    box.replaceChildren(
      h('div', {},
        h('strong', {}, title),
        p.detail ? h('span', {}, ` ${p.detail}`) : null,
        items.length ? h('ul', {}, items.map((t) => h('li', {}, t))) : null),
      box === $('error')
        ? h('button', { type: 'button', class: 'link', onclick: clearErrors }, 'Dismiss')
        : null,
    );
    box.hidden = false;
    if (e instanceof Problem && e.status === 401 && box === $('error')) signOut(false);
  }

  let noticeTimer = 0;
  function notice(text) {
    const el = $('notice');
    el.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.textContent = ''; }, 6000);
  }

  /** Runs an action from a button: errors shown, the button disabled meanwhile. */
  async function act(button, fn) {
    clearErrors();
    if (button) button.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(e);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- Formatting ---------------------------------------------------------------------------

  function when(iso, none) {
    if (!iso) return h('span', { class: 'muted' }, none || '—');
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return h('time', { datetime: iso, title: iso },
      iso.slice(0, 10), h('span', { class: 'clock' }, `${iso.slice(11, 16)} UTC`));
  }

  const scopeList = (scopes) => h('ul', { class: 'chips' }, (scopes || []).map((s) => h('li', {}, h('code', {}, s))));
  const parseScopes = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

  // ---- Session ------------------------------------------------------------------------------

  function showSignedIn() {
    const ws = sessionStorage.getItem(WORKSPACE);
    const token = sessionStorage.getItem(TOKEN) || '';
    $('session-workspace').textContent = ws || 'of the key';
    $('session-actor').textContent = token.startsWith('kw_') ? 'signed in with an admin key' : 'signed in with the root token';
    $('session').hidden = false;
    $('sign-in').hidden = true;
    $('app').hidden = false;
  }

  function signOut(clearMessages = true) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(WORKSPACE);
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    for (const id of ['keys-table', 'presets-table', 'groups-table', 'audit-table']) $(id).tBodies[0].replaceChildren();
    for (const dd of $('credits-summary').querySelectorAll('dd')) dd.textContent = '–';
    keys.reset();
    audit.reset();
    $('session').hidden = true;
    $('app').hidden = true;
    $('sign-in').hidden = false;
    $('token').value = '';
    if (clearMessages) {
      clearErrors();
      notice('Signed out.');
    }
    $('token').focus();
  }

  $('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    const ws = $('workspace').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN, token);
    if (ws) sessionStorage.setItem(WORKSPACE, ws);
    else sessionStorage.removeItem(WORKSPACE);
    $('token').value = '';
    act(ev.submitter, async () => {
      try {
        await loadKeys();
      } catch (e) {
        sessionStorage.removeItem(TOKEN);
        sessionStorage.removeItem(WORKSPACE);
        throw e;
      }
      showSignedIn();
      showView('keys');
      loadPresets().catch(showError);
    });
  });

  $('sign-out').addEventListener('click', () => signOut(true));

  // ---- Views --------------------------------------------------------------------------------

  function showView(name) {
    for (const tab of document.querySelectorAll('.tab')) {
      if (tab.dataset.view === name) tab.setAttribute('aria-current', 'page');
      else tab.removeAttribute('aria-current');
    }
    for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== `view-${name}`;
  }

  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => {
      const view = tab.dataset.view;
      showView(view);
      act(null, { keys: loadKeys, presets: loadPresets, groups: loadGroups, credits: loadCredits, audit: loadAudit }[view]);
    });
  }

  // ---- Keys ---------------------------------------------------------------------------------

  /**
   * Cursor paging over a list: the cursors of the pages before this one, this page's, the next one's.
   * Previous and Next are the pager's alone to enable: `act` re-enables the button it ran for, which
   * would undo the load's "disabled" on the first page (Previous) or the last (Next). A failed load
   * leaves the position where it was, so the buttons keep matching the rows on screen.
   */
  function pager(prefix, fetchPage) {
    const prev = $(`${prefix}-prev`);
    const next = $(`${prefix}-next`);
    const p = { cursors: [], cursor: '', next: '' };
    const settle = () => {
      prev.disabled = p.cursors.length === 0;
      next.disabled = !p.next;
    };
    p.load = async (move) => {
      const saved = { cursors: [...p.cursors], cursor: p.cursor, next: p.next };
      prev.disabled = true;
      next.disabled = true;
      try {
        if (move) move();
        p.next = await fetchPage(p.cursor);
      } catch (e) {
        Object.assign(p, saved);
        throw e;
      } finally {
        settle();
      }
    };
    p.first = () => p.load(() => {
      p.cursors = [];
      p.cursor = '';
    });
    p.reset = () => {
      Object.assign(p, { cursors: [], cursor: '', next: '' });
      settle();
    };
    next.addEventListener('click', () => act(null, () => p.load(() => {
      p.cursors.push(p.cursor);
      p.cursor = p.next;
    })));
    prev.addEventListener('click', () => act(null, () => p.load(() => {
      p.cursor = p.cursors.pop() || '';
    })));
    return p;
  }

  const keys = pager('keys', async (start) => {
    // The active and expired lists examine a bounded window of keys per call, so an answer may be
    // short (even empty) and still have a next_cursor: fill the page from the next answers, within
    // a few calls.
    const items = [];
    let cursor = start;
    let after = '';
    for (let calls = 0; calls < 10; calls += 1) {
      const data = await api('GET', `/admin/v1/keys${query({
        limit: PAGE_SIZE - items.length, cursor, status: $('status-filter').value,
      })}`);
      items.push(...data.items);
      after = data.next_cursor || '';
      if (!after || items.length >= PAGE_SIZE) break;
      cursor = after;
    }
    $('keys-table').tBodies[0].replaceChildren(...items.map(keyRow));
    $('keys-empty').hidden = items.length > 0;
    return after;
  });
  const loadKeys = () => keys.load();
  const firstKeysPage = () => keys.first();

  function keyRow(k) {
    const name = k.name;
    const btn = (label, fn, cls) => h('button', {
      type: 'button', class: cls || 'secondary small', 'aria-label': `${label} ${name}`,
      onclick: (ev) => act(ev.currentTarget, () => fn(k)),
    }, label);
    const actions = [];
    if (k.status !== 'revoked') {
      actions.push(btn('Edit', openEdit));
      if (k.status === 'active') {
        actions.push(btn('Rotate', rotateKey));
        actions.push(btn('Deactivate', (key) => setActive(key, false)));
      }
      if (k.status === 'disabled') actions.push(btn('Reactivate', (key) => setActive(key, true)));
      actions.push(btn('Revoke', revokeKey, 'danger small'));
    } else {
      actions.push(btn('Delete', deleteKey, 'danger small'));
    }
    const expires = k.valid_until || k.expires_at;
    return h('tr', { 'data-key-id': k.id },
      h('td', {}, h('div', { class: 'name' }, name),
        k.description ? h('div', { class: 'muted small' }, k.description) : null,
        k.superseded_by ? h('div', { class: 'muted small' }, 'rotated: successor issued') : null,
        k.environment === 'test' ? h('div', { class: 'muted small' }, 'test key') : null,
        k.groups && k.groups.length ? h('div', { class: 'muted small' }, `groups: ${k.groups.join(', ')}`) : null),
      h('td', {}, h('code', {}, k.preview)),
      h('td', {}, h('span', { class: `badge ${k.status}` }, k.status)),
      h('td', {}, scopeList(k.scopes)),
      h('td', {}, when(k.created_at)),
      h('td', {}, when(k.last_used_at, 'never')),
      h('td', {}, when(expires, 'never')),
      h('td', { class: 'row-actions' }, h('div', {}, actions)));
  }

  $('status-filter').addEventListener('change', () => act(null, firstKeysPage));
  $('refresh-keys').addEventListener('click', (ev) => act(ev.currentTarget, firstKeysPage));

  // The create / edit dialog. `editing` is the key being edited, or null for a new one.
  let editing = null;

  function expiryValue() {
    const choice = $('key-expires').value;
    if (choice === 'date') {
      const day = $('key-expires-date').value;
      if (!day) throw new Problem(400, { title: 'Invalid request', detail: 'Pick an expiry date.' });
      return new Date(`${day}T23:59:59.000Z`).toISOString();
    }
    return choice === '' ? null : choice;
  }

  $('key-expires').addEventListener('change', () => {
    $('key-expires-date-row').hidden = $('key-expires').value !== 'date';
  });

  async function openKeyDialog(key) {
    editing = key;
    clearErrors();
    const keep = $('key-expires').querySelector('option[value="keep"]');
    keep.hidden = keep.disabled = !key;
    $('key-dialog-title').textContent = key ? `Edit key “${key.name}”` : 'Create key';
    $('key-submit').textContent = key ? 'Save' : 'Create';
    $('preset-row').hidden = !!key;
    $('key-scopes-hint').textContent = key
      ? '(space or comma separated; replaces the key’s scopes)'
      : '(space or comma separated; added to the preset’s)';
    $('key-name').value = key ? key.name : '';
    $('key-description').value = key ? key.description || '' : '';
    $('key-scopes').value = key ? key.scopes.join(' ') : '';
    $('key-groups').value = key && key.groups ? key.groups.join(' ') : '';
    $('key-groups-hint').textContent = key
      ? '(space or comma separated; replaces the key’s groups, empty for none)'
      : '(optional; space or comma separated)';
    $('key-expires').value = key ? 'keep' : '';
    $('key-expires-date').value = '';
    $('key-expires-date-row').hidden = true;
    $('key-preset').value = '';
    $('key-dialog').showModal();
    $('key-name').focus();
  }

  const openEdit = (key) => openKeyDialog(key);

  $('new-key').addEventListener('click', (ev) => act(ev.currentTarget, async () => {
    await openKeyDialog(null);
    // Fresh presets for the select (another admin may have added one); the dialog is already open.
    loadPresets().catch(showError);
  }));

  for (const b of document.querySelectorAll('[data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }

  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(ev.submitter, async () => {
      const name = $('key-name').value.trim();
      const description = $('key-description').value.trim();
      const scopes = parseScopes($('key-scopes').value);
      const groups = parseScopes($('key-groups').value);
      if (!editing) {
        const body = { name };
        if (description) body.description = description;
        const preset = $('key-preset').value;
        if (preset) body.preset = preset;
        if (scopes.length) body.scopes = scopes;
        if (groups.length) body.groups = groups;
        const expires = expiryValue();
        if (expires) body.expires = expires;
        const created = await api('POST', '/admin/v1/keys', body);
        $('key-dialog').close();
        await firstKeysPage();
        showSecret(created.key, `Key “${created.name}” (${created.preview}), created.`);
        return;
      }
      const body = {};
      if (name !== editing.name) body.name = name;
      if (description !== (editing.description || '')) body.description = description;
      if (scopes.join(' ') !== editing.scopes.join(' ')) body.scopes = scopes;
      if ([...groups].sort().join(' ') !== (editing.groups || []).join(' ')) body.groups = groups;
      if ($('key-expires').value !== 'keep') body.expires = expiryValue();
      if (Object.keys(body).length) await api('PATCH', `/admin/v1/keys/${encodeURIComponent(editing.id)}`, body);
      $('key-dialog').close();
      notice(`Key “${name}” saved.`);
      await loadKeys();
    });
  });

  // The secret, shown once. Only the dialog's input holds it; closing the dialog clears it.
  function showSecret(secret, about) {
    $('secret-value').value = secret;
    $('secret-about').textContent = about;
    $('secret-copied').textContent = '';
    $('secret-dialog').showModal();
    $('secret-value').select();
  }

  $('secret-dialog').addEventListener('close', () => {
    $('secret-value').value = '';
    $('secret-copied').textContent = '';
  });
  $('secret-value').addEventListener('focus', () => $('secret-value').select());
  $('secret-copy').addEventListener('click', async () => {
    const input = $('secret-value');
    try {
      await navigator.clipboard.writeText(input.value);
      $('secret-copied').textContent = 'Copied to the clipboard.';
    } catch (e) {
      // No clipboard permission: leave it selected for Ctrl+C.
      input.focus();
      input.select();
      $('secret-copied').textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });

  // The confirmation dialog: runs `run` on confirm and stays open with the error if it fails.
  let confirmRun = null;
  function confirmThen({ title, text, ok, grace, run }) {
    clearErrors();
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    $('confirm-ok').className = grace ? '' : 'danger';
    $('grace-row').hidden = !grace;
    $('grace-seconds').value = '';
    confirmRun = run;
    $('confirm-dialog').showModal();
  }

  $('confirm-dialog').querySelector('form').addEventListener('submit', (ev) => {
    if (!ev.submitter || ev.submitter.value !== 'ok') return; // Cancel closes the dialog.
    ev.preventDefault();
    act(ev.submitter, async () => {
      await confirmRun();
      $('confirm-dialog').close();
    });
  });

  function revokeKey(k) {
    confirmThen({
      title: `Revoke “${k.name}”?`,
      text: 'Requests with this key are refused from now on. Revocation is permanent: it cannot be undone.',
      ok: 'Revoke key',
      run: async () => {
        await api('POST', `/admin/v1/keys/${encodeURIComponent(k.id)}/revoke`);
        notice(`Key “${k.name}” revoked.`);
        await loadKeys();
      },
    });
  }

  function deleteKey(k) {
    confirmThen({
      title: `Delete “${k.name}”?`,
      text: 'The key disappears from the list; the audit log keeps its history.',
      ok: 'Delete key',
      run: async () => {
        await api('DELETE', `/admin/v1/keys/${encodeURIComponent(k.id)}`);
        notice(`Key “${k.name}” deleted.`);
        await loadKeys();
      },
    });
  }

  function rotateKey(k) {
    confirmThen({
      title: `Rotate “${k.name}”?`,
      text: 'A new secret is issued under the same name. The old one keeps working until it is revoked, or for the grace period you set here.',
      ok: 'Rotate key',
      grace: true,
      run: async () => {
        const body = {};
        const grace = $('grace-seconds').value.trim();
        if (grace) body.grace_seconds = Number(grace);
        const created = await api('POST', `/admin/v1/keys/${encodeURIComponent(k.id)}/rotate`, body);
        $('confirm-dialog').close();
        await loadKeys();
        showSecret(created.key, `Key “${created.name}” (${created.preview}), rotated.${created.warning ? ` ${created.warning}` : ''}`);
      },
    });
  }

  async function setActive(k, active) {
    await api('POST', `/admin/v1/keys/${encodeURIComponent(k.id)}/${active ? 'reactivate' : 'deactivate'}`);
    notice(`Key “${k.name}” ${active ? 'reactivated' : 'deactivated'}.`);
    await loadKeys();
  }

  // ---- Named workspace objects (presets, groups) ----------------------------------------------

  const titled = (kind) => kind[0].toUpperCase() + kind.slice(1);

  /** A row's Delete button for the `kind` (preset, group) called `name`: confirm, DELETE, reload. */
  function deleteButton(kind, name, text, reload) {
    return h('button', {
      type: 'button', class: 'danger small', 'aria-label': `Delete ${kind} ${name}`,
      onclick: () => confirmThen({
        title: `Delete ${kind} “${name}”?`,
        text,
        ok: `Delete ${kind}`,
        run: async () => {
          await api('DELETE', `/admin/v1/${kind}s/${encodeURIComponent(name)}`);
          notice(`${titled(kind)} “${name}” deleted.`);
          await reload();
        },
      }),
    }, 'Delete');
  }

  /** The `${kind}-form`'s submit: POST `body()` plus the optional description, then reload. */
  function onCreate(kind, body, reload) {
    const form = $(`${kind}-form`);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(ev.submitter, async () => {
        const b = body();
        const description = $(`${kind}-description`).value.trim();
        if (description) b.description = description;
        await api('POST', `/admin/v1/${kind}s`, b);
        form.reset();
        notice(`${titled(kind)} “${b.name}” created.`);
        await reload();
      });
    });
  }

  // ---- Presets ------------------------------------------------------------------------------

  async function loadPresets() {
    const data = await api('GET', '/admin/v1/presets');
    $('presets-table').tBodies[0].replaceChildren(...data.items.map((p) => h('tr', {},
      h('td', {}, h('code', {}, p.name)),
      h('td', {}, p.description || ''),
      h('td', {}, scopeList(p.scopes)),
      h('td', {}, p.builtin ? 'built-in' : 'workspace'),
      h('td', { class: 'row-actions' }, p.builtin ? null
        : deleteButton('preset', p.name, 'Keys created from it keep their scopes.', loadPresets)))));
    const select = $('key-preset');
    const chosen = select.value;
    select.replaceChildren(h('option', { value: '' }, 'none: custom scopes only'),
      ...data.items.map((p) => h('option', { value: p.name }, `${p.name}: ${p.scopes.join(' ')}`)));
    select.value = data.items.some((p) => p.name === chosen) ? chosen : '';
  }

  onCreate('preset', () => ({ name: $('preset-name').value.trim(), scopes: parseScopes($('preset-scopes').value) }),
    loadPresets);

  // ---- Groups -------------------------------------------------------------------------------

  async function loadGroups() {
    const data = await api('GET', '/admin/v1/groups');
    $('groups-table').tBodies[0].replaceChildren(...data.items.map((g) => h('tr', {},
      h('td', {}, h('code', {}, g.name)),
      h('td', {}, g.description || ''),
      h('td', {}, when(g.created_at)),
      h('td', { class: 'row-actions' }, deleteButton('group', g.name,
        'Every key in it leaves it now; other locations stop forwarding it within the staleness bound.',
        loadGroups)))));
  }

  onCreate('group', () => ({ name: $('group-name').value.trim() }), loadGroups);

  // ---- Credits ------------------------------------------------------------------------------

  const count = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');

  async function loadCredits() {
    const c = await api('GET', '/admin/v1/credits');
    $('credits-balance').textContent = count(c.balance);
    $('credits-spent').textContent = count(c.spent);
    $('credits-refused').textContent = count(c.refused);
    $('credits-topped-up').textContent = count(c.topped_up);
  }

  $('topup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(ev.submitter, async () => {
      const amount = Number($('topup-amount').value);
      if (!Number.isInteger(amount) || amount < 1 || amount > 1_000_000_000) {
        throw new Problem(400, { title: 'Invalid amount', detail: 'Add a whole number of credits, 1 to 1,000,000,000.' });
      }
      // One id per submission: the API applies an id once, so a resent request adds nothing twice.
      const r = await api('POST', '/admin/v1/credits', { amount, id: crypto.randomUUID() });
      $('topup-form').reset();
      notice(`Added ${count(amount)} credits; the balance is ${count(r.balance)}.`);
      await loadCredits();
    });
  });
  $('refresh-credits').addEventListener('click', (ev) => act(ev.currentTarget, loadCredits));

  // ---- Audit --------------------------------------------------------------------------------

  const audit = pager('audit', async (cursor) => {
    const data = await api('GET', `/admin/v1/audit${query({ limit: PAGE_SIZE, cursor })}`);
    $('audit-table').tBodies[0].replaceChildren(...data.items.map((e) => h('tr', {},
      h('td', {}, when(e.at)),
      h('td', {}, h('code', {}, e.actor)),
      h('td', {}, e.action),
      h('td', {}, e.key_id ? h('code', {}, e.key_id) : ''),
      h('td', {}, e.detail && Object.keys(e.detail).length
        ? h('code', { class: 'detail' }, JSON.stringify(e.detail)) : ''))));
    return data.next_cursor || '';
  });
  const loadAudit = () => audit.load();
  $('refresh-audit').addEventListener('click', (ev) => act(ev.currentTarget, () => audit.first()));

  // ---- Start --------------------------------------------------------------------------------

  if (sessionStorage.getItem(TOKEN)) {
    showSignedIn();
    showView('keys');
    act(null, async () => {
      await loadKeys();
      await loadPresets();
    });
  } else {
    $('token').focus();
  }
})();

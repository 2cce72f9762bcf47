// keygate console: sign in with a key, manage the owner's keys, see usage.
//
// Rules this file keeps, which the tests check:
// - The key is kept in this closure's memory only: never in localStorage,
//   sessionStorage, a cookie or a URL. Reloading the page signs out.
// - Every text that comes from the API (names, scopes, problem details) is
//   inserted with textContent or as an attribute value, never as HTML.
// - No inline script or style: the page runs under default-src 'self'.
'use strict';

(() => {
  const root = document.documentElement;
  const cfg = {
    keysPath: root.dataset.keysPath || '/v1/keys',
    usagePath: root.dataset.usagePath || '/v1/usage',
    whoamiPath: root.dataset.whoamiPath || '/v1/whoami',
    header: root.dataset.keyHeader || 'X-API-Key',
  };
  const pageSize = 20;
  const chartDays = 30;
  const svgNS = 'http://www.w3.org/2000/svg';
  let chartWho = 'the key you signed in with'; // for the chart's caption

  const $ = (id) => document.getElementById(id);

  // State. apiKey is the only copy of the key the page keeps.
  let apiKey = null;
  let myKeyID = '';
  let me = null; // the signed-in key's view
  let canManage = false;
  let chartKeyID = ''; // the key whose usage is charted
  let showRevoked = false;
  let pages = ['']; // page tokens of the pages seen so far; the last is shown
  let keysOnPage = [];

  // el makes an element with text (as text, never HTML) and attributes.
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // ApiError is a refused call: the API's problem detail when it sent one.
  class ApiError extends Error {
    constructor(status, problem, fallback) {
      const p = problem && typeof problem === 'object' ? problem : {};
      super(typeof p.detail === 'string' && p.detail ? p.detail : fallback);
      this.status = status;
      this.code = typeof p.code === 'string' ? p.code : '';
      this.scope = typeof p.scope === 'string' ? p.scope : '';
      this.errors = Array.isArray(p.errors) ? p.errors.filter((e) => typeof e === 'string') : [];
    }
  }

  // api calls the API with the key and returns the parsed JSON body (null
  // for 204), or throws an ApiError.
  async function api(method, path, body) {
    const headers = { Accept: 'application/json, application/problem+json' };
    headers[cfg.header] = apiKey;
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, null, 'The API could not be reached (' + e.message + ').');
    }
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = JSON.parse(await resp.text());
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      throw new ApiError(resp.status, data, 'The API answered ' + resp.status + (resp.statusText ? ' ' + resp.statusText : '') + '.');
    }
    return data;
  }

  // showError puts err's message, and the rules it lists, in box; null
  // empties it.
  function showError(box, err) {
    box.replaceChildren();
    if (!err) return;
    box.append(el('p', err.message || String(err)));
    if (err.errors && err.errors.length) {
      const ul = el('ul');
      for (const e of err.errors) ul.append(el('li', e));
      box.append(ul);
    }
  }

  // A call answered 401 means the key no longer works (revoked, expired):
  // sign out and say why.
  function handle(box, err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(err);
      return;
    }
    showError(box, err);
  }

  // ---- Sign in and out ----

  // signIn asks who the key is (any valid key may), then whether it may
  // manage its owner's keys: the manager's page if so, the key's own page
  // if the API answers that a scope is missing.
  async function signIn(event) {
    event.preventDefault();
    const field = $('api-key');
    const key = field.value.trim();
    showError($('sign-in-error'), null);
    if (!key) {
      showError($('sign-in-error'), new Error('Paste a key first.'));
      field.focus();
      return;
    }
    apiKey = key;
    let list = null;
    let manageNeeds = '';
    try {
      me = await api('GET', cfg.whoamiPath);
      try {
        list = await api('GET', cfg.keysPath + '?limit=' + pageSize);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 'insufficient_scope')) throw err;
        manageNeeds = err.scope;
      }
    } catch (err) {
      apiKey = null;
      me = null;
      showError($('sign-in-error'), err);
      field.focus();
      field.select();
      return;
    }
    field.value = ''; // the key is in memory now; not left in the form
    myKeyID = me.id || '';
    chartKeyID = myKeyID;
    canManage = list !== null;
    pages = [''];
    $('sign-in').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    if (me.owner) {
      $('who').textContent = 'Owner: ' + me.owner;
      $('who').hidden = false;
    }
    $('keys').hidden = !canManage;
    $('self').hidden = canManage;
    $('usage-pick').hidden = !canManage;
    if (canManage) {
      renderKeys(list);
      $('keys-title').focus();
    } else {
      renderSelf(me, manageNeeds);
      $('self-title').focus();
    }
    loadUsage();
  }

  function signOut(reason) {
    apiKey = null;
    myKeyID = '';
    me = null;
    canManage = false;
    chartKeyID = '';
    $('self-details').replaceChildren();
    $('self-status').textContent = '';
    $('usage-key').replaceChildren();
    keysOnPage = [];
    pages = [''];
    $('app').hidden = true;
    $('sign-out').hidden = true;
    $('who').hidden = true;
    $('who').textContent = '';
    $('keys-body').replaceChildren();
    $('usage-rows').replaceChildren();
    $('chart').replaceChildren();
    $('new-key-value').value = '';
    $('new-key').hidden = true;
    closeCreate();
    $('sign-in').hidden = false;
    showError($('sign-in-error'), reason instanceof Error ? reason : null);
    $('api-key').focus();
  }

  // ---- Keys ----

  function dateTime(s) {
    if (!s) return '';
    const d = new Date(s);
    if (isNaN(d)) return String(s);
    return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  function num(n) {
    return Number(n).toLocaleString('en-US');
  }

  function limitsText(k) {
    const parts = [];
    if (k.rate_limit) parts.push(num(k.rate_limit) + '/s' + (k.burst ? ', burst ' + num(k.burst) : ''));
    if (k.monthly_quota) parts.push(num(k.monthly_quota) + '/month');
    return parts.length ? parts.join('; ') : 'none';
  }

  // label is how a key is named in buttons and confirmations.
  function label(k) {
    return k.name || k.hint || k.id;
  }

  async function loadKeys() {
    const token = pages[pages.length - 1];
    let path = cfg.keysPath + '?limit=' + pageSize;
    if (token) path += '&page_token=' + encodeURIComponent(token);
    try {
      renderKeys(await api('GET', path));
      showError($('keys-error'), null);
    } catch (err) {
      handle($('keys-error'), err);
    }
  }

  function renderKeys(list) {
    const keys = (list && Array.isArray(list.keys)) ? list.keys : [];
    keysOnPage = keys;
    const body = $('keys-body');
    body.replaceChildren();
    const shown = showRevoked ? keys : keys.filter((k) => k.status !== 'revoked');
    const hidden = keys.length - shown.length;
    $('revoked-note').textContent = hidden ? hidden + (hidden === 1 ? ' revoked key' : ' revoked keys') + ' hidden on this page.' : '';
    if (!shown.length) {
      const tr = el('tr', null, { class: 'keys-empty' });
      tr.append(el('td', 'No keys on this page.', { colspan: '9' }));
      body.append(tr);
    }
    for (const k of shown) body.append(keyRow(k));
    renderUsagePick();
    const next = list && typeof list.next_page_token === 'string' ? list.next_page_token : '';
    $('next-page').disabled = !next;
    $('next-page').dataset.token = next;
    $('prev-page').disabled = pages.length < 2;
    $('page-label').textContent = 'Page ' + pages.length;
    $('pager').hidden = !next && pages.length < 2;
  }

  function keyRow(k) {
    const tr = el('tr', null, { id: 'key-' + k.id, tabindex: '-1' });
    const cell = (name, content) => {
      const td = el('td', null, { 'data-label': name });
      if (content instanceof Node) td.append(content);
      else td.textContent = content;
      tr.append(td);
      return td;
    };
    // One element in the cell, so that the narrow layout's grid keeps the
    // name and its mark together.
    const name = el('span');
    name.append(k.name ? k.name : el('span', 'no name', { class: 'noname' }));
    if (k.id && k.id === myKeyID) name.append(' ', thisKeyMark());
    cell('Name', name);
    // The hint to recognise the key, its ID to match it with the CLI and
    // the logs (actor_key_id), copied whole by the button.
    const id = el('span', null, { class: 'key-id' });
    id.append(el('span', k.hint || '', { class: 'mono' }), el('code', shortID(k.id), { title: k.id }));
    const copy = el('button', 'Copy ID', { type: 'button', class: 'small', 'aria-label': 'Copy ID of ' + label(k) });
    copy.addEventListener('click', () => copyText(k.id, $('keys-status'), 'Copied the ID of ' + label(k) + '.'));
    id.append(copy);
    cell('Key', id);
    cell('Scopes', Array.isArray(k.scopes) ? k.scopes.join(', ') : '');
    const status = el('span');
    status.append(el('span', k.status || '', { class: 'status status-' + (k.status || 'unknown') }));
    if (k.replaced_by) status.append(replacedBy(k));
    if (k.leaked_at) status.append(leakNote(k));
    if (k.created_by) status.append(createdBy(k));
    cell('Status', status);
    cell('Created', timeCell(k.created_at));
    cell('Expires', k.expires_at ? timeCell(k.expires_at) : 'never');
    cell('Last used', k.last_used_at ? timeCell(k.last_used_at) : 'never');
    cell('Limits', limitsText(k));
    const actions = el('td', null, { class: 'row-actions' });
    // Only an active key can be rotated, and revoking one that has expired
    // would change nothing.
    if (k.status === 'active') {
      const rotate = el('button', 'Rotate', { type: 'button', class: 'small', 'aria-label': 'Rotate ' + label(k) });
      rotate.addEventListener('click', () => rotateKey(k, rotate));
      const revoke = el('button', 'Revoke', { type: 'button', class: 'small', 'aria-label': 'Revoke ' + label(k) });
      revoke.addEventListener('click', () => revokeKey(k, revoke));
      actions.append(rotate, revoke);
    }
    tr.append(actions);
    return tr;
  }

  // timeCell shows a time as dateTime does, wrapping only between the date
  // and the time.
  function timeCell(s) {
    const text = dateTime(s);
    const cut = text.indexOf(' ');
    if (cut < 0) return el('span', text);
    const span = el('span');
    span.append(el('span', text.slice(0, cut), { class: 'nowrap' }), ' ', el('span', text.slice(cut + 1), { class: 'nowrap' }));
    return span;
  }

  function shortID(id) {
    return id ? String(id).slice(0, 12) + '…' : '';
  }

  // leakNote says that GitHub's secret scanning found k in public, when
  // and where: a link to the place when it is a web address.
  function leakNote(k) {
    const note = el('span', null, { class: 'leaked' });
    note.append('Found in public ' + dateTime(k.leaked_at) + (k.leak_url ? ' at ' : ''));
    if (/^https:\/\//.test(k.leak_url || '')) {
      note.append(el('a', k.leak_url, { href: k.leak_url, rel: 'noopener noreferrer', target: '_blank' }));
    } else if (k.leak_url) {
      note.append(k.leak_url);
    }
    return note;
  }

  // createdBy names the key that made k through the keys API: its hint when
  // it is on this page, and a warning when that key was found in public, so
  // that the keys a leaked key minted stand out.
  function createdBy(k) {
    const maker = keysOnPage.find((o) => o.id === k.created_by);
    const text = 'Made by ' + (maker ? maker.hint : 'key ' + shortID(k.created_by));
    if (maker && maker.leaked_at) return el('span', text + ', a key found in public: revoke this one too', { class: 'leaked minted' });
    return el('span', text, { class: 'replaced' });
  }

  // replacedBy links a rotated key to the key that replaced it: its row
  // when it is on this page.
  function replacedBy(k) {
    const repl = keysOnPage.find((o) => o.id === k.replaced_by);
    const text = 'Replaced by ' + (repl ? repl.hint : 'key ' + shortID(k.replaced_by));
    if (!repl || (repl.status === 'revoked' && !showRevoked)) return el('span', text, { class: 'replaced' });
    const a = el('a', text, { href: '#key-' + repl.id, class: 'replaced' });
    a.addEventListener('click', (event) => {
      event.preventDefault(); // no fragment in the address or the history
      const row = $('key-' + repl.id);
      if (row) {
        row.scrollIntoView({ block: 'nearest' });
        row.focus();
      }
    });
    return a;
  }

  // copyText copies text to the clipboard and says so in box.
  async function copyText(text, box, done) {
    try {
      await navigator.clipboard.writeText(text);
      box.textContent = done;
    } catch (e) {
      box.textContent = 'Copying failed: ' + text;
    }
  }

  // ---- The key's own page, for a key that cannot manage keys ----

  function renderSelf(k, manageNeeds) {
    const dl = $('self-details');
    dl.replaceChildren();
    const row = (term, value) => {
      dl.append(el('dt', term));
      const dd = el('dd');
      if (value instanceof Node) dd.append(value);
      else dd.textContent = value;
      dl.append(dd);
    };
    row('Name', k.name || 'no name');
    row('Key ID', el('code', k.id || '', { class: 'mono-wrap' }));
    row('Hint', el('span', k.hint || '', { class: 'mono' }));
    row('Scopes', Array.isArray(k.scopes) && k.scopes.length ? k.scopes.join(', ') : 'none');
    row('Status', el('span', k.status || '', { class: 'status status-' + (k.status || 'unknown') }));
    row('Created', dateTime(k.created_at));
    row('Expires', k.expires_at ? dateTime(k.expires_at) : 'never');
    row('Last used', k.last_used_at ? dateTime(k.last_used_at) : 'never');
    row('Limits', limitsText(k));
    if (k.replaced_by) row('Replaced by', 'key ' + shortID(k.replaced_by));
    if (k.leaked_at) row('Found in public', leakNote(k));
    if (k.created_by) row('Made by', 'key ' + shortID(k.created_by));
    $('self-manage').textContent = manageNeeds
      ? 'Managing this owner\'s keys (create, rotate, revoke) needs a key with the scope ' + manageNeeds + '.'
      : '';
  }

  function thisKeyMark() {
    return el('span', '(this key)', { class: 'this-key-mark' });
  }

  // ---- Create ----

  function openCreate() {
    $('create-form').hidden = false;
    $('create-open').setAttribute('aria-expanded', 'true');
    showError($('create-error'), null);
    $('create-name').focus();
  }

  function closeCreate() {
    $('create-form').hidden = true;
    $('create-form').reset();
    $('create-open').setAttribute('aria-expanded', 'false');
    showError($('create-error'), null);
  }

  async function createKey(event) {
    event.preventDefault();
    const req = { name: $('create-name').value.trim() };
    const scopes = $('create-scopes').value.split(/[\s,]+/).filter(Boolean);
    if (scopes.length) req.scopes = scopes;
    if ($('create-expiry').value) req.expires_in = $('create-expiry').value;
    const button = event.submitter || null;
    if (button) button.disabled = true;
    try {
      const created = await api('POST', cfg.keysPath, req);
      closeCreate();
      showNewKey(created, 'Created ' + label(created) + ' with scopes ' + (created.scopes || []).join(', ') + '.');
      pages = [''];
      await loadKeys();
    } catch (err) {
      handle($('create-error'), err);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function showNewKey(created, about) {
    $('new-key-about').textContent = about;
    $('new-key-value').value = created.key || '';
    $('copy-status').textContent = '';
    $('new-key').hidden = false;
    $('new-key-value').focus();
    $('new-key-value').select();
  }

  async function copyKey() {
    const field = $('new-key-value');
    let copied = false;
    try {
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (e) {
      field.focus();
      field.select();
      try {
        copied = document.execCommand('copy');
      } catch (e2) {
        copied = false;
      }
    }
    $('copy-status').textContent = copied ? 'Copied.' : 'Copying failed: the key is selected, copy it with your keyboard.';
  }

  function doneNewKey() {
    $('new-key-value').value = '';
    $('new-key').hidden = true;
    $('keys-title').focus();
  }

  // ---- Revoke and rotate, each after a confirmation ----

  // confirmAction opens the confirmation dialog and resolves to whether the
  // user confirmed.
  function confirmAction(title, text, ok, withGrace) {
    const dialog = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    $('grace-field').hidden = !withGrace;
    $('grace').value = '24h';
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
      (withGrace ? $('grace') : $('confirm-cancel')).focus();
    });
  }

  async function revokeKey(k, button) {
    const yes = await confirmAction('Revoke ' + label(k) + '?',
      'Requests with the key ' + (k.hint || '') + ' will be refused from now on. This cannot be undone.', 'Revoke', false);
    if (!yes) {
      button.focus();
      return;
    }
    try {
      await api('DELETE', cfg.keysPath + '/' + encodeURIComponent(k.id));
      $('keys-status').textContent = 'Revoked ' + label(k) + '.';
      showError($('keys-error'), null);
      await loadKeys();
      $('keys-title').focus();
    } catch (err) {
      handle($('keys-error'), err);
    }
  }

  async function rotateKey(k, button) {
    const yes = await confirmAction('Rotate ' + label(k) + '?',
      'A new key with the same name, scopes and limits replaces ' + (k.hint || 'this key') + ', which keeps working for the time you choose, then expires.',
      'Rotate', true);
    if (!yes) {
      button.focus();
      return;
    }
    const grace = $('grace').value;
    try {
      const rotated = await api('POST', cfg.keysPath + '/' + encodeURIComponent(k.id) + '/rotate', { grace });
      const old = rotated.replaces || {};
      showNewKey(rotated, 'Rotated ' + label(k) + ': the old key ' + (old.hint || '') +
        (old.expires_at ? ' expires at ' + dateTime(old.expires_at) : ' has expired') + '.');
      $('keys-status').textContent = '';
      showError($('keys-error'), null);
      pages = [''];
      await loadKeys();
      $('new-key-value').focus();
    } catch (err) {
      handle($('keys-error'), err);
    }
  }

  // ---- Usage ----

  function isoDay(d) {
    return d.toISOString().slice(0, 10);
  }

  // days lists the UTC days from from to to, inclusive.
  function days(from, to) {
    const out = [];
    const d = new Date(from + 'T00:00:00Z');
    const end = new Date(to + 'T00:00:00Z');
    while (d <= end && out.length < 400) {
      out.push(isoDay(d));
      d.setUTCDate(d.getUTCDate() + 1);
    }
    return out;
  }

  // renderUsagePick lists the keys a manager can chart: the signed-in key,
  // then the keys on this page.
  function renderUsagePick() {
    const pick = $('usage-key');
    const keys = keysOnPage.filter((k) => k.id !== myKeyID && (showRevoked || k.status !== 'revoked'));
    if (me) keys.unshift(me);
    if (!keys.some((k) => k.id === chartKeyID)) {
      // The charted key left the page: chart the signed-in key again.
      chartKeyID = myKeyID;
      if (apiKey) loadUsage();
    }
    pick.replaceChildren();
    for (const k of keys) {
      const o = el('option', label(k) + ' (' + (k.hint || shortID(k.id)) + ')' + (k.id === myKeyID ? ', this key' : ''), { value: k.id });
      if (k.id === chartKeyID) o.selected = true;
      pick.append(o);
    }
  }

  function chartedKey() {
    if (chartKeyID === myKeyID) return me;
    return keysOnPage.find((k) => k.id === chartKeyID) || null;
  }

  async function loadUsage() {
    const now = new Date();
    const to = isoDay(now);
    const fromDate = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (chartDays - 1)));
    const from = isoDay(fromDate);
    // A manager reads any key of its owner's; a key holder, its own.
    const path = canManage ? cfg.keysPath + '/' + encodeURIComponent(chartKeyID) + '/usage' : cfg.usagePath;
    const charted = chartKeyID;
    try {
      const u = await api('GET', path + '?from=' + from + '&to=' + to);
      if (charted !== chartKeyID) return; // another key was chosen meanwhile
      showError($('usage-error'), null);
      renderUsage(u);
    } catch (err) {
      $('usage-body').hidden = true;
      if (err instanceof ApiError && err.code === 'insufficient_scope' && err.scope) {
        showError($('usage-error'), new Error('Seeing usage needs a key with the scope ' + err.scope + '.'));
        return;
      }
      handle($('usage-error'), err);
    }
  }

  function totalBox(labelText, used, quota) {
    const box = el('div', null, { class: 'total' });
    box.append(el('p', labelText, { class: 'label' }));
    const n = Number(used) || 0;
    if (typeof quota === 'number' && quota > 0) {
      box.append(el('p', num(n) + ' of ' + num(quota), { class: 'number' }));
      const pct = Math.min(100, Math.round((n / quota) * 100));
      const m = el('meter', null, { min: '0', max: String(quota), value: String(Math.min(n, quota)), low: String(quota * 0.8), high: String(quota * 0.95), optimum: '0' });
      m.setAttribute('aria-label', labelText + ': ' + pct + '% of the quota');
      box.append(m);
      box.append(el('p', pct + '% of the monthly quota', { class: 'hint' }));
    } else {
      box.append(el('p', num(n), { class: 'number' }));
      box.append(el('p', 'requests; no monthly quota', { class: 'hint' }));
    }
    return box;
  }

  function renderUsage(u) {
    const k = chartedKey();
    const mine = u.key_id === myKeyID;
    const who = mine ? 'This key' : (k ? label(k) + ' (' + k.hint + ')' : 'Key ' + shortID(u.key_id));
    const totals = $('totals');
    totals.replaceChildren();
    totals.append(totalBox(who + ', ' + u.month + ' (UTC)', u.month_total, u.monthly_quota));
    if (u.owner) {
      totals.append(totalBox('All keys of ' + u.owner.owner + ', ' + u.month, u.owner.month_total, u.owner.monthly_quota));
    }
    chartWho = mine ? 'the key you signed in with' : who;
    $('usage-table-caption').textContent = 'Requests per day with ' + chartWho;
    const counts = new Map();
    for (const d of Array.isArray(u.days) ? u.days : []) counts.set(d.day, Number(d.requests) || 0);
    const series = days(u.from, u.to).map((day) => ({ day, n: counts.get(day) || 0 }));
    renderChart(series, u.from, u.to);
    const rows = $('usage-rows');
    rows.replaceChildren();
    for (const p of series) {
      const tr = el('tr');
      tr.append(el('th', p.day, { scope: 'row' }), el('td', num(p.n)));
      rows.append(tr);
    }
    $('usage-body').hidden = false;
  }

  // renderChart draws the requests per day as SVG bars: one element with
  // role="img" whose label says what a sighted reader sees.
  function renderChart(series, from, to) {
    const W = 720;
    const H = 240;
    const left = 72;
    const right = 8;
    const top = 24;
    const bottom = 28;
    const max = Math.max(0, ...series.map((p) => p.n));
    const total = series.reduce((s, p) => s + p.n, 0);
    const active = series.filter((p) => p.n > 0).length;
    let peak = series[0];
    for (const p of series) if (p.n > peak.n) peak = p;
    let text = 'Requests per day, ' + from + ' to ' + to + ': ';
    text += total ? num(total) + ' in all on ' + active + (active === 1 ? ' day' : ' days') + ', most ' + num(peak.n) + ' on ' + peak.day + '.'
      : 'none.';
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': text, focusable: 'false', preserveAspectRatio: 'xMidYMid meet' });
    const scaleMax = niceMax(max);
    const plotH = H - top - bottom;
    const plotW = W - left - right;
    for (const f of [0, 0.5, 1]) {
      const y = top + plotH * (1 - f);
      s.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: y, y2: y }));
      s.append(svg('text', { class: 'axis', x: left - 6, y: y + 4, 'text-anchor': 'end' }, num(Math.round(scaleMax * f))));
    }
    const step = plotW / series.length;
    const barW = Math.max(2, step * 0.7);
    series.forEach((p, i) => {
      const h = scaleMax ? (p.n / scaleMax) * plotH : 0;
      const x = left + i * step + (step - barW) / 2;
      const bar = svg('rect', { class: i === series.length - 1 ? 'bar bar-today' : 'bar', x: x.toFixed(1), y: (top + plotH - h).toFixed(1), width: barW.toFixed(1), height: h.toFixed(1), 'data-day': p.day, 'data-requests': p.n });
      bar.append(svg('title', {}, p.day + ': ' + num(p.n) + ' requests'));
      s.append(bar);
    });
    const labelAt = (i, anchor) => s.append(svg('text', { class: 'axis', x: left + i * step + step / 2, y: H - 8, 'text-anchor': anchor }, series[i].day));
    if (series.length) {
      labelAt(0, 'start');
      labelAt(series.length - 1, 'end');
    }
    $('chart').replaceChildren(s);
    $('chart-caption').textContent = 'Requests per day with ' + chartWho + ', ' + from + ' to ' + to + ' (UTC); today is the lighter bar.';
  }

  // niceMax rounds n up to a round number for the chart's top line: 1,
  // 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.
  function niceMax(n) {
    if (n <= 0) return 0;
    const p = Math.pow(10, Math.floor(Math.log10(n)));
    for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  }

  // ---- Wiring ----

  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut(null));
  $('create-open').addEventListener('click', () => ($('create-form').hidden ? openCreate() : closeCreate()));
  $('create-cancel').addEventListener('click', () => {
    closeCreate();
    $('create-open').focus();
  });
  $('create-form').addEventListener('submit', createKey);
  $('copy').addEventListener('click', copyKey);
  $('new-key-done').addEventListener('click', doneNewKey);
  $('next-page').addEventListener('click', () => {
    const t = $('next-page').dataset.token;
    if (!t) return;
    pages.push(t);
    loadKeys().then(() => $('keys-title').focus());
  });
  $('prev-page').addEventListener('click', () => {
    if (pages.length < 2) return;
    pages.pop();
    loadKeys().then(() => $('keys-title').focus());
  });
  $('self-copy-id').addEventListener('click', () => copyText(me ? me.id : '', $('self-status'), 'Copied the key ID.'));
  $('show-revoked').addEventListener('change', () => {
    showRevoked = $('show-revoked').checked;
    renderKeys({ keys: keysOnPage, next_page_token: $('next-page').dataset.token || '' });
  });
  $('usage-key').addEventListener('change', () => {
    chartKeyID = $('usage-key').value;
    loadUsage();
  });
  $('api-key').focus();
})();

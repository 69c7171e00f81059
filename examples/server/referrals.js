// The referrer page (DESIGN.md section 6): plain JavaScript, no build step.
// The access token arrives in the URL fragment, which reaches no server
// log; it is kept in this closure only, and sent as a Bearer token to the
// JSON routes of this origin. The browser reads the token's sub (the user
// id) to build the paths; the server verifies the token.
'use strict';

(function () {
  const PAGE_SIZE = 20;
  const LABELS = {
    pending: 'Pending', sent: 'Sent', failed: 'Not delivered', suppressed: 'Not sent',
    accepted: 'Accepted', revoked: 'Revoked', expired: 'Expired',
  };
  const RESENDABLE = new Set(['sent', 'failed', 'expired']);
  const FINAL = new Set(['accepted', 'revoked']);

  const $ = (id) => document.getElementById(id);
  let token = '';
  let base = '';
  let userPath = '';
  let nextCursor = null;
  let shown = 0;

  function say(text, isError) {
    const el = $('status');
    el.className = text ? (isError ? 'error' : 'info') : '';
    el.textContent = text;
  }

  // takeToken reads #token=... and removes it from the address bar and the
  // history entry, so that it is not bookmarked, shared or shown.
  function takeToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const t = params.get('token') || '';
    if (location.hash) {
      history.replaceState(null, '', location.pathname + location.search);
    }
    return t;
  }

  // subject decodes the token's payload for its sub; no verification here.
  function subject(jwt) {
    const part = jwt.split('.')[1];
    if (!part) return '';
    try {
      const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return typeof claims.sub === 'string' ? claims.sub : '';
    } catch (e) {
      return '';
    }
  }

  // retryText turns a Retry-After in seconds into words.
  function retryText(header) {
    const s = Number(header);
    if (!Number.isFinite(s) || s <= 0) return '';
    if (s < 90) return ' (in about ' + Math.ceil(s) + ' seconds)';
    if (s < 5400) return ' (in about ' + Math.round(s / 60) + ' minutes)';
    if (s < 129600) return ' (in about ' + Math.round(s / 3600) + ' hours)';
    return ' (in about ' + Math.round(s / 86400) + ' days)';
  }

  // who starts a status line about an invite to email.
  function who(email) {
    return email ? email + ': ' : '';
  }

  // call sends a request to a route of this origin and returns the
  // envelope of a success; a failure throws an Error with the envelope's
  // error.
  async function call(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(base + path, init);
    } catch (e) {
      throw new Error('Could not reach the server. Check your connection and try again.');
    }
    let env = null;
    try {
      env = await resp.json();
    } catch (e) {
      env = null;
    }
    if (resp.ok && env && env.success) return env;
    let text = env && typeof env.error === 'string' ? env.error : 'Something went wrong (' + resp.status + ').';
    text = text.charAt(0).toUpperCase() + text.slice(1);
    if (resp.status === 429) text += retryText(resp.headers.get('Retry-After'));
    // The token expired or is not this server's: only the app makes another.
    if (resp.status === 401) text += '. Open this page again from your app.';
    throw new Error(text);
  }

  // busy runs fn unless el's last run is still going, and marks el busy
  // meanwhile: aria-disabled rather than disabled, which would take the
  // focus away from the button.
  async function busy(el, fn) {
    if (el.getAttribute('aria-disabled') === 'true') return;
    el.setAttribute('aria-disabled', 'true');
    try {
      await fn();
    } catch (e) {
      say(e.message, true);
    } finally {
      el.removeAttribute('aria-disabled');
    }
  }

  function dateText(s) {
    if (!s) return '—';
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
  }

  function field(dl, name, value) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.append(value);
    dl.append(dt, dd);
  }

  function timeEl(s) {
    if (!s) return '—';
    const t = document.createElement('time');
    t.dateTime = s;
    t.textContent = dateText(s);
    return t;
  }

  function button(text, hidden, action, inv) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.dataset.action = action;
    b.append(text);
    const name = document.createElement('span');
    name.className = 'visually-hidden';
    name.textContent = ' invite to ' + (inv.email || 'an erased address');
    b.append(name);
    b.hidden = hidden;
    return b;
  }

  // row renders one invite; its buttons are there when the status allows.
  function row(inv) {
    const li = document.createElement('li');
    li.dataset.id = inv.id;
    li.dataset.status = inv.status;
    const email = document.createElement('p');
    email.className = 'email';
    email.textContent = inv.email || '(address erased)';
    const dl = document.createElement('dl');
    const badge = document.createElement('span');
    badge.className = 'badge status';
    badge.textContent = LABELS[inv.status] || inv.status;
    field(dl, 'Status', badge);
    field(dl, 'Invited', timeEl(inv.createdAt));
    field(dl, 'Sent', timeEl(inv.sentAt));
    if (inv.acceptedAt) field(dl, 'Accepted', timeEl(inv.acceptedAt));
    const actions = document.createElement('div');
    actions.className = 'row';
    const resend = button('Resend', !RESENDABLE.has(inv.status), 'resend', inv);
    const revoke = button('Revoke', FINAL.has(inv.status), 'revoke', inv);
    resend.addEventListener('click', () => busy(resend, async () => {
      const env = await call('POST', userPath + '/referral-invites/' + encodeURIComponent(inv.id) + '/resend');
      say(who(inv.email) + env.message, false);
      await reload();
    }));
    revoke.addEventListener('click', () => busy(revoke, async () => {
      const env = await call('DELETE', userPath + '/referral-invites/' + encodeURIComponent(inv.id));
      say(who(inv.email) + env.message, false);
      await reload();
    }));
    actions.append(resend, revoke);
    li.append(email, dl, actions);
    return li;
  }


  function render(page, append) {
    const list = $('invites');
    const hadFocus = list.contains(document.activeElement);
    if (!append) list.replaceChildren();
    for (const inv of page.invites) list.append(row(inv));
    shown = list.children.length;
    nextCursor = page.nextCursor;
    $('more').hidden = !nextCursor;
    $('none').hidden = shown > 0;
    // A button that went away with its row took the focus with it.
    if (hadFocus && !list.contains(document.activeElement)) $('invites-heading').focus();
  }

  // reload fetches the first page again, as many invites as are shown.
  async function reload() {
    const limit = Math.min(100, Math.max(PAGE_SIZE, shown));
    render((await call('GET', userPath + '/referral-invites?limit=' + limit)).data, false);
    showInfo((await call('GET', userPath + '/referral-code')).data);
  }

  function showInfo(info) {
    $('link').value = info.link;
    $('counts').textContent = 'Invited ' + info.invited + ', sent ' + info.sent + ', accepted ' + info.accepted + '.';
  }

  async function copyLink() {
    const input = $('link');
    try {
      await navigator.clipboard.writeText(input.value);
      say('Link copied.', false);
      return;
    } catch (e) {
      // No clipboard API here, or no permission: the selection instead.
    }
    input.focus();
    input.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    say(ok ? 'Link copied.' : 'The link is selected: copy it with your device\u2019s copy command.', false);
  }

  function pickLanguage() {
    const select = $('language');
    for (const tag of navigator.languages || []) {
      const lang = String(tag).toLowerCase().split('-')[0];
      if ([...select.options].some((o) => o.value === lang)) {
        select.value = lang;
        return;
      }
    }
  }

  async function start() {
    token = takeToken();
    const user = token ? subject(token) : '';
    if (!user) {
      if (token) say('The sign-in link is not valid: open this page again from your app.', true);
      return;
    }
    // Relative to the page, so that a proxy's path prefix is kept.
    base = new URL('.', location.href).pathname.replace(/\/$/, '');
    userPath = '/v1/users/' + encodeURIComponent(user);
    $('signed-out').hidden = true;
    $('app').hidden = false;
    pickLanguage();

    $('copy').addEventListener('click', copyLink);
    $('more').addEventListener('click', () => busy($('more'), async () => {
      const page = (await call('GET', userPath + '/referral-invites?limit=' + PAGE_SIZE + '&cursor=' + encodeURIComponent(nextCursor))).data;
      const first = $('invites').children.length;
      render(page, true);
      const next = $('invites').children[first];
      if (next) next.querySelector('button:not([hidden])')?.focus();
    }));
    $('invite-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const email = $('email');
      if (!email.value.trim()) {
        say('Enter the email address to invite.', true);
        email.focus();
        return;
      }
      busy($('send'), async () => {
        const env = await call('POST', userPath + '/referral-invites', { email: email.value.trim(), language: $('language').value });
        say(who(email.value.trim()) + env.message, false);
        email.value = '';
        await reload();
      });
    });

    try {
      showInfo((await call('GET', userPath + '/referral-code')).data);
      render((await call('GET', userPath + '/referral-invites?limit=' + PAGE_SIZE)).data, false);
    } catch (e) {
      say(e.message, true);
    }
  }

  // A new token in the fragment (a link followed while the page is open)
  // is a new start.
  window.addEventListener('hashchange', () => location.reload());
  start();
}());

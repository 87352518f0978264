// app.js: the bcrm dashboard, a single page app on the REST API (spec/api.md).
//
// Hash routes (#/o/{org}/campaigns ...) pick a page; each page builds its DOM with
// h() (never innerHTML, so no text from the API is ever parsed as markup, and the
// Content-Security-Policy of the api can forbid inline scripts and styles) and
// talks to /v1 with the session cookie, sending the session's CSRF token on every
// request that changes state.
//
// Privacy: the bots' users are read live and kept only in the variables of the page
// that shows them; nothing is written to localStorage, sessionStorage or cookies,
// and every API answer is fetched with cache: 'no-store'.

const main = document.getElementById('main');
const state = { me: null, csrf: null, org: null };
let cleanups = []; // run when the route changes: timers of the page being left

// ---- the API --------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// One request to the API. Resolves to the parsed answer (null for 204); rejects
// with an ApiError carrying the problem document (RFC 9457) on any failure.
async function api(method, path, body, headers = {}) {
  const init = {
    method,
    headers: { Accept: 'application/json', ...headers },
    credentials: 'same-origin',
    cache: 'no-store',
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && state.csrf) {
    init.headers['X-CSRF-Token'] = state.csrf;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: 'Network error', detail: 'the API cannot be reached' });
  }
  let data = null;
  if (res.status !== 204) {
    const type = res.headers.get('Content-Type') || '';
    try {
      data = type.includes('json') ? await res.json() : await res.text();
    } catch (e) {
      data = null;
    }
  }
  if (!res.ok) {
    const problem = data && typeof data === 'object' ? data
      : { title: res.statusText || `HTTP ${res.status}`,
          detail: typeof data === 'string' ? data.slice(0, 300) : '' };
    const retry = res.headers.get('Retry-After');
    if (retry) problem.detail = `${problem.detail || ''} (retry after ${retry} s)`.trim();
    if (res.status === 401 && state.me && !path.startsWith('/v1/login')) {
      // The session ended (expired, or logged out elsewhere).
      state.me = null;
      state.csrf = null;
      go('#/login');
    }
    throw new ApiError(res.status, problem);
  }
  return data;
}

const orgPath = (rest) => `/v1/orgs/${encodeURIComponent(state.org)}${rest}`;
const newKey = () => (crypto.randomUUID ? crypto.randomUUID()
  : Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, '0')).join(''));

// ---- DOM helpers ----------------------------------------------------------

// h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child...): an element.
// Attributes with null/undefined/false values are left out; children may be
// strings (always text), nodes, arrays, or null.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [key, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), v);
    else if (key === 'class') el.className = v;
    else if (key === 'value') value = v;
    else el.setAttribute(key, v === true ? '' : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  if (value !== undefined) el.value = value;
  return el;
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function timeCell(iso) {
  return h('td', { title: iso || null, class: 'nowrap' }, fmtTime(iso));
}

function badge(status) {
  return h('span', { class: `badge badge-${status}` }, status);
}

function errorBox(err) {
  const p = err.problem || {};
  return h('div', { class: 'form-error', role: 'alert' },
    h('strong', {}, p.title || 'Error'), p.detail || err.message ? `: ${p.detail || err.message}` : '',
    p.current_status ? ` (current status: ${p.current_status})` : '');
}

// A labelled control. field is the API's name for it ("schedule.fallback_tz"),
// used to show a problem that names the field next to it.
function field(label, control, { hint, name, cls } = {}) {
  return h('div', { class: `field ${cls || ''}`, 'data-field': name || null },
    h('label', {}, h('span', { class: 'label' }, label), control),
    hint ? h('p', { class: 'hint' }, hint) : null);
}

function clearErrors(form) {
  form.querySelectorAll('.field-error, .form-error').forEach((e) => e.remove());
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
}

// Shows err next to the field its problem names (the longest data-field that is
// the field or a parent of it: "audience.filter.user_ids[2]" lands on
// "audience"), or at the top of the form.
function showError(form, err) {
  clearErrors(form);
  const p = err.problem || {};
  let target = null;
  if (typeof p.field === 'string') {
    let best = -1;
    for (const el of form.querySelectorAll('[data-field]')) {
      if (el.hidden || el.closest('[hidden]')) continue;
      const name = el.dataset.field;
      const hit = p.field === name || p.field.startsWith(`${name}.`)
        || p.field.startsWith(`${name}[`);
      if (hit && name.length > best) {
        best = name.length;
        target = el;
      }
    }
  }
  if (!target) {
    form.prepend(errorBox(err));
    form.querySelector('.form-error').scrollIntoView({ block: 'nearest' });
    return;
  }
  target.append(h('p', { class: 'field-error', role: 'alert' }, p.detail || p.title || err.message));
  const control = target.querySelector('input, select, textarea');
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

// Runs fn(form) on submit with the submit buttons disabled; shows its ApiError.
function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const buttons = form.querySelectorAll('button');
    buttons.forEach((b) => { b.disabled = true; });
    clearErrors(form);
    try {
      await fn(ev.submitter);
    } catch (err) {
      if (!(err instanceof ApiError)) console.error(err);
      showError(form, err instanceof ApiError ? err
        : new ApiError(0, { title: 'Error', detail: String(err.message || err) }));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

// Cursor paging over an API list: load(cursor) renders one page and resolves to
// the next cursor (or null). Keeps the cursors of earlier pages for "Previous".
class Pager {
  constructor(load) {
    this.load = load;
    this.stack = [];
    this.cursor = null;
    this.nextCursor = null;
    this.busy = false;
    this.prevButton = h('button', { type: 'button', class: 'secondary', onclick: () => this.prev() },
      '← Previous');
    this.nextButton = h('button', { type: 'button', class: 'secondary', onclick: () => this.next() },
      'Next →');
    this.info = h('span', { class: 'muted' });
    this.el = h('div', { class: 'pager' }, this.prevButton, this.info, this.nextButton);
  }

  async reload() {
    if (this.busy) return;
    this.busy = true;
    try {
      const next = await this.load(this.cursor);
      if (next !== undefined) this.nextCursor = next || null;
    } finally {
      this.busy = false;
      this.prevButton.disabled = this.stack.length === 0;
      this.nextButton.disabled = !this.nextCursor;
      this.info.textContent = `Page ${this.stack.length + 1}`;
    }
  }

  reset() {
    this.stack = [];
    this.cursor = null;
    this.nextCursor = null;
    return this.reload();
  }

  next() {
    if (!this.nextCursor || this.busy) return undefined;
    this.stack.push(this.cursor);
    this.cursor = this.nextCursor;
    return this.reload();
  }

  prev() {
    if (this.stack.length === 0 || this.busy) return undefined;
    this.cursor = this.stack.pop();
    return this.reload();
  }
}

function table(headings, rows, empty) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.length ? rows
      : h('tr', {}, h('td', { colspan: headings.length, class: 'empty' }, empty)))));
}

// ---- routing --------------------------------------------------------------

const routes = [
  [/^#\/login$/, pageLogin, true],
  [/^#\/signup$/, pageSignup, true],
  [/^#\/o\/([^/]+)\/campaigns$/, pageCampaigns],
  [/^#\/o\/([^/]+)\/campaigns\/new$/, pageCampaignNew],
  [/^#\/o\/([^/]+)\/campaigns\/([^/]+)$/, pageCampaign],
  [/^#\/o\/([^/]+)\/bots$/, pageBots],
  [/^#\/o\/([^/]+)\/bots\/([^/]+)$/, pageBot],
  [/^#\/o\/([^/]+)\/keys$/, pageKeys],
];

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function home() {
  const org = state.org && state.me.orgs.some((o) => o.id === state.org) ? state.org
    : state.me.orgs[0]?.id;
  return org ? `#/o/${org}/campaigns` : '#/login';
}

async function loadMe() {
  try {
    const me = await api('GET', '/v1/me');
    state.me = me;
    state.csrf = me.csrf_token || state.csrf;
  } catch (err) {
    if (err.status !== 401) throw err;
    state.me = null;
  }
}

function updateHeader() {
  const nav = document.getElementById('nav');
  const session = document.getElementById('session');
  const loggedIn = Boolean(state.me && state.org);
  nav.hidden = !loggedIn;
  session.hidden = !state.me;
  if (!state.me) return;
  const who = state.me.user;
  document.getElementById('whoami').textContent = who ? who.email || who.name : 'API key';
  const switcher = document.getElementById('org-switcher');
  switcher.replaceChildren(...state.me.orgs.map((o) => h('option', { value: o.id },
    `${o.name} (${o.role})`)));
  if (state.org) switcher.value = state.org;
  const section = (location.hash.match(/^#\/o\/[^/]+\/([a-z]+)/) || [])[1];
  for (const a of nav.querySelectorAll('a')) {
    a.href = `#/o/${state.org}/${a.dataset.section}`;
    a.classList.toggle('active', a.dataset.section === section);
  }
}

async function render() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  const hash = location.hash || '#/';
  let route = null;
  let params = [];
  for (const [re, page, isPublic] of routes) {
    const m = hash.match(re);
    if (m) {
      route = { page, isPublic };
      params = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  if (!state.me && !(route && route.isPublic)) {
    go('#/login');
    return;
  }
  if (state.me && (!route || route.isPublic)) {
    go(home());
    return;
  }
  if (!route.isPublic) {
    const org = params[0];
    if (!state.me.orgs.some((o) => o.id === org)) {
      // An org of another account, or a stale link: start from one of ours.
      state.org = null;
      go(home());
      return;
    }
    state.org = org;
  } else {
    state.org = null;
  }
  updateHeader();
  const view = h('section', { class: 'view' });
  main.replaceChildren(view);
  try {
    await route.page(view, ...params.slice(route.isPublic ? 0 : 1));
  } catch (err) {
    if (!(err instanceof ApiError)) console.error(err);
    view.append(errorBox(err instanceof ApiError ? err
      : new ApiError(0, { title: 'Error', detail: String(err.message || err) })));
  }
}

function onCleanup(fn) {
  cleanups.push(fn);
}

// ---- login and signup -----------------------------------------------------

function pageLogin(view) {
  document.title = 'Log in · bcrm';
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, 'Log in'),
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true }),
      { name: 'email' }),
    field('Password', h('input', { type: 'password', name: 'password',
      autocomplete: 'current-password', required: true }), { name: 'password' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Log in')),
    h('p', { class: 'muted' }, 'No account yet? ', h('a', { href: '#/signup' }, 'Sign up')));
  onSubmit(form, async () => {
    const answer = await api('POST', '/v1/login',
      { email: form.elements.email.value, password: form.elements.password.value });
    state.csrf = answer.csrf_token;
    await loadMe();
    go(home());
  });
  view.append(form);
  form.elements.email.focus();
}

function pageSignup(view) {
  document.title = 'Sign up · bcrm';
  const form = h('form', { class: 'card narrow', novalidate: true },
    h('h1', {}, 'Create an account'),
    field('Your name', h('input', { name: 'name', autocomplete: 'name', required: true }),
      { name: 'name' }),
    field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true }),
      { name: 'email' }),
    field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password',
      required: true }), { name: 'password', hint: 'At least 8 characters.' }),
    field('Organisation', h('input', { name: 'org_name', autocomplete: 'organization', required: true }),
      { name: 'org_name', hint: 'Your agency or company; you can be added to others later.' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign up')),
    h('p', { class: 'muted' }, 'Have an account? ', h('a', { href: '#/login' }, 'Log in')));
  onSubmit(form, async () => {
    const e = form.elements;
    const answer = await api('POST', '/v1/signup', {
      name: e.name.value, email: e.email.value, password: e.password.value,
      org_name: e.org_name.value,
    });
    state.csrf = answer.csrf_token || null;
    await loadMe();
    state.org = answer.org.id;
    go(`#/o/${answer.org.id}/bots`);
  });
  view.append(form);
  form.elements.name.focus();
}

// ---- bots -----------------------------------------------------------------

async function pageBots(view) {
  document.title = 'Bots · bcrm';
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const tokenField = field('Bot token', h('input', { name: 'token', type: 'password',
    autocomplete: 'off', spellcheck: 'false', placeholder: 'xoxb-…', required: true }),
  { name: 'token', hint: 'Verified with auth.test, then kept encrypted by the vault; it is never shown again.' });
  const pageField = field('Page access token', h('input', { name: 'page_token', type: 'password',
    autocomplete: 'off', spellcheck: 'false', required: true }),
  { name: 'page_token', hint: 'Verified with the Graph API, then kept encrypted by the vault.' });
  pageField.hidden = true;
  const platform = h('select', { name: 'platform' },
    h('option', { value: 'slack' }, 'Slack bot'), h('option', { value: 'messenger' }, 'Messenger page'));
  platform.addEventListener('change', () => {
    tokenField.hidden = platform.value !== 'slack';
    pageField.hidden = platform.value !== 'messenger';
  });
  const form = h('form', { class: 'card', novalidate: true },
    h('h2', {}, 'Connect a bot'),
    h('div', { class: 'row' }, field('Platform', platform, { name: 'platform' }), tokenField, pageField),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Connect')));
  onSubmit(form, async () => {
    const body = platform.value === 'slack'
      ? { platform: 'slack', token: form.elements.token.value.trim() }
      : { platform: 'messenger', page_token: form.elements.page_token.value.trim() };
    const bot = await api('POST', orgPath('/bots'), body, { 'Idempotency-Key': newKey() });
    form.reset();
    go(`#/o/${state.org}/bots/${bot.id}`);
  });
  view.append(h('div', { class: 'page-head' }, h('h1', {}, 'Bots')), list, form);

  const { bots } = await api('GET', orgPath('/bots'));
  const rows = bots.map((b) => h('tr', {},
    h('td', {}, h('a', { href: `#/o/${state.org}/bots/${b.id}` }, b.name || b.id)),
    h('td', {}, b.platform),
    h('td', {}, b.team_id || b.page_id || '—'),
    h('td', {}, badge(b.status)),
    timeCell(b.created_at)));
  list.replaceChildren(table(['Name', 'Platform', 'Workspace / page', 'Status', 'Connected'], rows,
    'No bot yet: connect one below.'));
}

const FLAGS = [['is_owner', 'owner'], ['is_admin', 'admin'], ['is_bot', 'bot'], ['deleted', 'deleted']];

function userFlags(u) {
  return FLAGS.filter(([k]) => u[k]).map(([, label]) => h('span', { class: `tag tag-${label}` }, label));
}

function userName(u) {
  return u.real_name || u.name || u.first_name || u.id;
}

// The alert and the "Reconnect" form of a bot whose token the platform refused
// (POST .../bots/{bot}/token). onDone(answer) gets the reconnected bot.
function reconnectForm(bot, onDone) {
  const slack = bot.platform === 'slack';
  const name = slack ? 'token' : 'page_token';
  const input = h('input', { name, type: 'password', autocomplete: 'off', spellcheck: 'false',
    placeholder: slack ? 'xoxb-…' : null, required: true });
  const form = h('form', { class: 'card', novalidate: true, 'data-reconnect': '' },
    h('h2', {}, 'Reconnect'),
    h('p', {}, slack
      ? 'Paste a new bot token of the same workspace and app (reinstall the app to get one).'
      : 'Paste a new page access token of the same page.'),
    h('div', { class: 'row' }, field(slack ? 'New bot token' : 'New page access token', input,
      { name, hint: 'Verified with the platform first; the bot keeps its campaigns and history.' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Reconnect')));
  onSubmit(form, async () => {
    const answer = await api('POST', orgPath(`/bots/${encodeURIComponent(bot.id)}/token`),
      { [name]: input.value.trim() }, { 'Idempotency-Key': newKey() });
    input.value = '';
    await onDone(answer);
  });
  const alert = h('div', { class: 'alert', role: 'alert', 'data-bot-alert': '' },
    h('strong', {}, 'The platform no longer accepts this bot\'s token.'),
    ' Its campaigns are paused when they meet the refused token, and nothing is sent in its name ',
    'until it is reconnected. Reconnect it below; paused campaigns stay paused until you resume them.');
  return [alert, form];
}

// What a reconnect left to do: the bot's paused campaigns, each a link.
function reconnectedNotice(answer) {
  const ids = answer.paused_campaigns || [];
  return h('div', { class: 'notice', role: 'status', 'data-reconnected': '' },
    h('strong', {}, 'Reconnected: the bot is active again. '),
    ids.length === 0 ? 'No campaign of this bot is paused.'
      : [`${ids.length} paused campaign${ids.length === 1 ? '' : 's'} of this bot stay${ids.length === 1 ? 's' : ''} paused until you resume ${ids.length === 1 ? 'it' : 'them'}: `,
        ids.map((id, i) => [i ? ', ' : '', h('a', { href: `#/o/${state.org}/campaigns/${id}` }, id.slice(0, 8))])]);
}

async function pageBot(view, botId, reconnected = null) {
  document.title = 'Bot · bcrm';
  const bot = await api('GET', orgPath(`/bots/${encodeURIComponent(botId)}`));
  document.title = `${bot.name || 'Bot'} · bcrm`;
  const remove = h('button', { type: 'button', class: 'danger' }, 'Disconnect');
  remove.addEventListener('click', async () => {
    if (!window.confirm(`Disconnect ${bot.name || 'this bot'}? Its token is destroyed and its open campaigns are cancelled.`)) return;
    try {
      await api('DELETE', orgPath(`/bots/${encodeURIComponent(botId)}`));
      go(`#/o/${state.org}/bots`);
    } catch (err) {
      view.prepend(errorBox(err));
    }
  });
  view.append(
    h('p', { class: 'crumbs' }, h('a', { href: `#/o/${state.org}/bots` }, '← Bots')),
    h('div', { class: 'page-head' }, h('h1', {}, bot.name || bot.id), badge(bot.status),
      h('span', { class: 'spacer' }), remove),
    ...(reconnected ? [reconnectedNotice(reconnected)] : []),
    ...(bot.status === 'token_invalid' ? reconnectForm(bot, async (answer) => {
      view.replaceChildren();
      await pageBot(view, botId, answer);
    }) : []),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Platform'), h('dd', {}, bot.platform),
      h('dt', {}, bot.platform === 'slack' ? 'Team' : 'Page'), h('dd', {}, bot.team_id || bot.page_id || '—'),
      bot.bot_user_id ? [h('dt', {}, 'Bot user'), h('dd', {}, bot.bot_user_id)] : null,
      h('dt', {}, 'Connected'), h('dd', {}, fmtTime(bot.created_at))));

  // The users, read live page by page; this page's variables are their only copy.
  const limit = h('select', { 'aria-label': 'Users per page' },
    [25, 50, 100, 200].map((n) => h('option', { value: n }, `${n} a page`)));
  limit.value = '50';
  const holder = h('div', {});
  const pager = new Pager(async (cursor) => {
    const q = new URLSearchParams({ limit: limit.value });
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', orgPath(`/bots/${encodeURIComponent(botId)}/users?${q}`));
      const rows = page.users.map((u) => h('tr', { 'data-user': u.id },
        h('td', {}, userName(u)), h('td', { class: 'mono' }, u.id), h('td', {}, u.tz || '—'),
        h('td', {}, userFlags(u))));
      holder.replaceChildren(table(['Name', 'ID', 'Time zone', 'Flags'], rows, 'No users.'));
      return page.next_cursor;
    } catch (err) {
      holder.replaceChildren(errorBox(err));
      return undefined;
    }
  });
  limit.addEventListener('change', () => pager.reset());
  view.append(h('div', { class: 'page-head' }, h('h2', {}, 'Users'),
    h('span', { class: 'muted' }, 'read live from the platform, never stored'),
    h('span', { class: 'spacer' }), limit), holder, pager.el);
  if (bot.status === 'active') {
    await pager.reset();
  } else {
    holder.replaceChildren(h('p', { class: 'muted' }, bot.status === 'token_invalid'
      ? 'The bot is token_invalid; reconnect it above to read its users.'
      : `The bot is ${bot.status}; its users cannot be read.`));
  }
}

// ---- campaigns ------------------------------------------------------------

const STATS = ['total', 'pending', 'sent', 'failed', 'unknown', 'skipped', 'cancelled', 'read'];

async function botNames() {
  const { bots } = await api('GET', orgPath('/bots'));
  return new Map(bots.map((b) => [b.id, b]));
}

async function pageCampaigns(view) {
  document.title = 'Campaigns · bcrm';
  const holder = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  view.append(h('div', { class: 'page-head' }, h('h1', {}, 'Campaigns'), h('span', { class: 'spacer' }),
    h('a', { class: 'button', href: `#/o/${state.org}/campaigns/new` }, 'New campaign')), holder);
  const bots = await botNames();
  const pager = new Pager(async (cursor) => {
    const q = new URLSearchParams({ limit: '25' });
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', orgPath(`/campaigns?${q}`));
    const rows = page.campaigns.map((c) => {
      const s = c.stats || {};
      return h('tr', { 'data-campaign': c.id },
        h('td', {}, h('a', { href: `#/o/${state.org}/campaigns/${c.id}` }, c.name)),
        h('td', {}, badge(c.status)),
        h('td', {}, bots.get(c.bot_id)?.name || '—'),
        h('td', { class: 'num' }, `${s.sent ?? 0} / ${s.total ?? 0}`),
        h('td', { class: 'num' }, String(s.failed ?? 0)),
        h('td', { class: 'num' }, String(s.unknown ?? 0)),
        timeCell(c.created_at));
    });
    holder.replaceChildren(table(['Name', 'Status', 'Bot', 'Sent', 'Failed', 'Unknown', 'Created'], rows,
      'No campaign yet.'));
    return page.next_cursor;
  });
  view.append(pager.el);
  await pager.reset();
}

function localZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch (e) {
    return 'UTC';
  }
}

function zoneList() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return h('datalist', { id: 'zones' }, ['UTC', ...zones].map((z) => h('option', { value: z })));
}

// "2026-12-10T09:00" in the browser's zone -> "2026-12-10T08:00:00Z"; anything
// else is passed on for the API to name the field.
function toUtc(local) {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function inputValueDate(d) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// Choosing recipients from the bot's live user list. Only their ids are kept,
// and only while the form is open.
function userPicker(getBot) {
  const selected = new Set();
  const count = h('span', { class: 'muted', 'data-selected-count': '' }, '0 selected');
  const holder = h('div', {});
  const updateCount = () => { count.textContent = `${selected.size} selected`; };
  const pager = new Pager(async (cursor) => {
    const bot = getBot();
    if (!bot) {
      holder.replaceChildren(h('p', { class: 'muted' }, 'Choose a bot first.'));
      return null;
    }
    const q = new URLSearchParams({ limit: '50' });
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', orgPath(`/bots/${encodeURIComponent(bot)}/users?${q}`));
      const rows = page.users.map((u) => {
        // The audience leaves bots, deleted users and Slackbot out: offer only people.
        const reachable = !u.is_bot && !u.deleted && u.id !== 'USLACKBOT';
        const box = h('input', { type: 'checkbox', value: u.id, 'aria-label': `Select ${userName(u)}`,
          checked: selected.has(u.id), disabled: !reachable,
          title: reachable ? null : 'Bots and deleted users get no messages' });
        box.addEventListener('change', () => {
          if (box.checked) selected.add(u.id); else selected.delete(u.id);
          updateCount();
        });
        return h('tr', {}, h('td', {}, box), h('td', {}, userName(u)), h('td', { class: 'mono' }, u.id),
          h('td', {}, u.tz || '—'), h('td', {}, userFlags(u)));
      });
      holder.replaceChildren(table(['', 'Name', 'ID', 'Time zone', 'Flags'], rows, 'No users.'));
      return page.next_cursor;
    } catch (err) {
      holder.replaceChildren(errorBox(err));
      return undefined;
    }
  });
  const el = h('div', { class: 'picker' }, h('div', { class: 'picker-head' }, count), holder, pager.el);
  return {
    el,
    selected,
    reload: () => { selected.clear(); updateCount(); return pager.reset(); },
  };
}

async function pageCampaignNew(view) {
  document.title = 'New campaign · bcrm';
  const { bots } = await api('GET', orgPath('/bots'));
  const usable = bots.filter((b) => b.status === 'active');
  const idempotencyKey = newKey(); // one per form: a double submit creates one campaign

  const bot = h('select', { name: 'bot_id', required: true },
    usable.length ? null : h('option', { value: '' }, 'no active bot'),
    usable.map((b) => h('option', { value: b.id }, `${b.name || b.id} (${b.platform})`)));
  const text = h('textarea', { name: 'text', rows: 4, required: true,
    placeholder: 'Hi {{first_name|there}}! …' });

  const audienceAll = h('input', { type: 'radio', name: 'audience', value: 'all', checked: true });
  const audienceSome = h('input', { type: 'radio', name: 'audience', value: 'user_ids' });
  const picker = userPicker(() => bot.value);
  picker.el.hidden = true;
  const audienceChanged = () => {
    picker.el.hidden = !audienceSome.checked;
    if (audienceSome.checked && picker.selected.size === 0) picker.reload();
  };
  audienceAll.addEventListener('change', audienceChanged);
  audienceSome.addEventListener('change', audienceChanged);
  bot.addEventListener('change', () => { if (audienceSome.checked) picker.reload(); });

  // The default moment: a full hour, one to two hours ahead.
  const later = new Date(Date.now() + 2 * 3600e3);
  later.setMinutes(0, 0, 0);
  const pad = (n) => String(n).padStart(2, '0');
  const modes = ['now', 'at', 'local'];
  const modeRadios = modes.map((m) => h('input', { type: 'radio', name: 'mode', value: m, checked: m === 'now' }));
  const atInput = h('input', { type: 'datetime-local', name: 'at',
    value: `${inputValueDate(later)}T${pad(later.getHours())}:00` });
  const dateInput = h('input', { type: 'date', name: 'date', value: inputValueDate(new Date(Date.now() + 86400e3)) });
  const timeInput = h('input', { type: 'time', name: 'time', value: '09:00' });
  const zoneInput = h('input', { name: 'fallback_tz', list: 'zones', value: localZone(), autocomplete: 'off' });
  const ifPassed = h('select', { name: 'if_passed' },
    h('option', { value: 'next_day' }, 'send the next day'),
    h('option', { value: 'send_now' }, 'send at once'),
    h('option', { value: 'skip' }, 'skip that user'));
  const atGroup = h('div', { class: 'row' },
    field('Send at (your time)', atInput, { name: 'schedule.at', hint: `Time zone ${localZone()}.` }));
  const localGroup = h('div', { class: 'row' },
    field('Date', dateInput, { name: 'schedule.date' }),
    field('Time in each user\'s zone', timeInput, { name: 'schedule.time' }),
    field('Fallback zone', zoneInput, { name: 'schedule.fallback_tz',
      hint: 'For users whose zone the platform does not report.' }),
    field('If that time has passed in a zone', ifPassed, { name: 'schedule.if_passed' }));
  const modeChanged = () => {
    const mode = modeRadios.find((r) => r.checked).value;
    atGroup.hidden = mode !== 'at';
    localGroup.hidden = mode !== 'local';
  };
  modeRadios.forEach((r) => r.addEventListener('change', modeChanged));
  modeChanged();

  const form = h('form', { class: 'card', novalidate: true },
    field('Name', h('input', { name: 'name', required: true, maxlength: 200 }), { name: 'name' }),
    field('Bot', bot, { name: 'bot_id', hint: usable.length ? null : 'Connect a bot first (Bots).' }),
    field('Message', text, { name: 'message',
      hint: 'Slack mrkdwn. {{first_name|there}} puts in each user\'s first name, or "there".' }),
    h('fieldset', { 'data-field': 'audience' }, h('legend', {}, 'Audience'),
      h('label', { class: 'inline' }, audienceAll, 'Everyone the bot can reach (not bots, not deleted users)'),
      h('label', { class: 'inline' }, audienceSome, 'Selected users'),
      picker.el),
    h('fieldset', { 'data-field': 'schedule' }, h('legend', {}, 'When'),
      h('label', { class: 'inline' }, modeRadios[0], 'Now'),
      h('label', { class: 'inline' }, modeRadios[1], 'At a moment'),
      h('label', { class: 'inline' }, modeRadios[2], 'At a local time in each user\'s zone'),
      atGroup, localGroup),
    zoneList(),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', name: 'schedule', value: 'yes' }, 'Create and schedule'),
      h('button', { type: 'submit', class: 'secondary', name: 'schedule', value: 'no' }, 'Save as draft'),
      h('a', { href: `#/o/${state.org}/campaigns` }, 'Cancel')));

  onSubmit(form, async (submitter) => {
    const e = form.elements;
    const mode = modeRadios.find((r) => r.checked).value;
    let schedule = { mode: 'now' };
    if (mode === 'at') schedule = { mode: 'at', at: toUtc(atInput.value) };
    if (mode === 'local') {
      schedule = { mode: 'local', date: dateInput.value, time: timeInput.value,
        fallback_tz: zoneInput.value.trim(), if_passed: ifPassed.value };
    }
    const body = {
      name: e.name.value.trim(),
      bot_id: bot.value,
      message: { text: text.value },
      audience: { filter: audienceSome.checked ? { user_ids: [...picker.selected] } : { all: true } },
      schedule,
    };
    const campaign = await api('POST', orgPath('/campaigns'), body,
      { 'Idempotency-Key': idempotencyKey });
    let note = null;
    if (submitter && submitter.value === 'yes') {
      try {
        await api('POST', orgPath(`/campaigns/${campaign.id}/schedule`));
      } catch (err) {
        note = err;
      }
    }
    go(`#/o/${state.org}/campaigns/${campaign.id}`);
    if (note) main.querySelector('.view').prepend(errorBox(note));
  });

  view.append(h('p', { class: 'crumbs' }, h('a', { href: `#/o/${state.org}/campaigns` }, '← Campaigns')),
    h('h1', {}, 'New campaign'), form);
  form.elements.name.focus();
}

function describeAudience(a) {
  const f = (a && a.filter) || {};
  if (f.all) return 'Everyone the bot can reach';
  if (Array.isArray(f.user_ids)) return `${f.user_ids.length} selected user${f.user_ids.length === 1 ? '' : 's'}`;
  if (Array.isArray(f.channel_ids)) return `Channels ${f.channel_ids.join(', ')}`;
  return JSON.stringify(a);
}

function describeSchedule(s) {
  if (!s) return '—';
  switch (s.mode) {
    case 'now': return 'Now';
    case 'at': return fmtTime(s.at);
    case 'local':
      return `${s.date} at ${s.time} in each user's zone (fallback ${s.fallback_tz}; if passed: ${s.if_passed || 'next_day'})`;
    case 'recurring': return `${s.rrule} at ${s.time}${s.local ? ' local' : ''} from ${s.start_date}`;
    default: return JSON.stringify(s);
  }
}

// What may be done to a campaign in each status (README "Transitions").
const ACTIONS = {
  draft: ['schedule', 'cancel'],
  scheduled: ['pause', 'cancel'],
  running: ['pause', 'cancel', 'retry:failed', 'retry:unknown'],
  paused: ['resume', 'cancel'],
  completed: ['retry:failed', 'retry:unknown'],
  cancelled: [],
};
const ACTION_LABELS = {
  schedule: 'Schedule', pause: 'Pause', resume: 'Resume', cancel: 'Cancel campaign',
  'retry:failed': 'Retry failed', 'retry:unknown': 'Retry unknown',
};

async function pageCampaign(view, campaignId) {
  document.title = 'Campaign · bcrm';
  const base = `/campaigns/${encodeURIComponent(campaignId)}`;
  const bots = await botNames();
  let campaign = await api('GET', orgPath(base));

  const title = h('h1', {});
  const status = h('span', { id: 'campaign-status' });
  const actions = h('div', { class: 'actions' });
  const notice = h('div', {});
  const problem = h('div', {});
  const progress = h('progress', { max: 1, value: 0 });
  const statTiles = new Map(STATS.map((s) => [s, h('span', { class: 'stat-value' }, '0')]));
  const facts = h('dl', { class: 'facts' });
  const updated = h('span', { class: 'muted small' });

  async function act(action) {
    if (action === 'cancel' && !window.confirm('Cancel this campaign? Pending messages will not be sent.')) return;
    notice.replaceChildren();
    const [verb, which] = action.split(':');
    try {
      campaign = await api('POST', orgPath(`${base}/${verb}`), which ? { status: which } : undefined);
      show();
      deliveries.reload();
    } catch (err) {
      notice.replaceChildren(errorBox(err));
    }
  }

  function show() {
    const c = campaign;
    const s = c.stats || {};
    document.title = `${c.name} · bcrm`;
    title.textContent = c.name;
    status.replaceChildren(badge(c.status));
    status.dataset.status = c.status;
    // Why it does not go on, when the scheduler knows (e.g. an audience too large).
    problem.replaceChildren(...(c.problem ? [h('div', { class: 'alert', role: 'alert', 'data-problem': '' },
      h('strong', {}, 'This campaign cannot go on: '), c.problem)] : []));
    for (const [name, el] of statTiles) el.textContent = String(s[name] ?? 0);
    progress.max = Math.max(1, s.total || 0);
    progress.value = (s.total || 0) - (s.pending || 0);
    actions.replaceChildren(...ACTIONS[c.status]?.filter((a) => !a.startsWith('retry:')
      || (s[a.split(':')[1]] || 0) > 0).map((a) => h('button', {
      type: 'button', 'data-action': a,
      class: a === 'cancel' ? 'danger' : (a.startsWith('retry') ? 'secondary' : null),
      onclick: () => act(a),
    }, ACTION_LABELS[a])) || []);
    const bot = bots.get(c.bot_id);
    facts.replaceChildren(...[
      h('dt', {}, 'Bot'), h('dd', {}, bot ? h('a', { href: `#/o/${state.org}/bots/${bot.id}` }, bot.name || bot.id) : c.bot_id),
      h('dt', {}, 'Message'), h('dd', { class: 'message' }, c.message?.text || '—'),
      h('dt', {}, 'Audience'), h('dd', {}, describeAudience(c.audience)),
      h('dt', {}, 'When'), h('dd', {}, describeSchedule(c.schedule)),
      h('dt', {}, 'Due'), h('dd', {}, c.first_due_at
        ? `${fmtTime(c.first_due_at)}${c.last_due_at && c.last_due_at !== c.first_due_at ? ` – ${fmtTime(c.last_due_at)}` : ''}` : '—'),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(c.created_at)),
      c.completed_at ? [h('dt', {}, 'Completed'), h('dd', {}, fmtTime(c.completed_at))] : [],
    ].flat());
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // The deliveries, filtered and paged.
  const filter = h('select', { 'aria-label': 'Delivery status' },
    h('option', { value: '' }, 'all statuses'),
    ['pending', 'sending', 'sent', 'failed', 'unknown', 'skipped', 'cancelled', 'read']
      .map((s) => h('option', { value: s }, s)));
  const csv = h('a', { class: 'button secondary', download: '' }, 'Download CSV');
  const setCsv = () => {
    const q = new URLSearchParams({ format: 'csv', limit: '100000' });
    if (filter.value) q.set('status', filter.value);
    csv.href = orgPath(`${base}/deliveries?${q}`);
  };
  setCsv();
  const holder = h('div', {});
  const deliveries = new Pager(async (cursor) => {
    const q = new URLSearchParams({ limit: '50' });
    if (filter.value) q.set('status', filter.value);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', orgPath(`${base}/deliveries?${q}`));
      const rows = page.deliveries.map((d) => h('tr', { 'data-delivery': d.id },
        h('td', { class: 'mono' }, d.recipient_id), h('td', {}, badge(d.status)),
        h('td', { class: 'num' }, String(d.attempts ?? 0)), timeCell(d.due_at), timeCell(d.sent_at),
        h('td', { class: 'error-text' }, d.last_error || '')));
      holder.replaceChildren(table(['Recipient', 'Status', 'Attempts', 'Due', 'Sent', 'Last error'], rows,
        campaign.status === 'draft' || campaign.status === 'scheduled'
          ? 'No deliveries yet: they are made when the campaign starts.' : 'No deliveries.'));
      return page.next_cursor;
    } catch (err) {
      holder.replaceChildren(errorBox(err));
      return undefined;
    }
  });
  filter.addEventListener('change', () => { setCsv(); deliveries.reset(); });

  view.append(
    h('p', { class: 'crumbs' }, h('a', { href: `#/o/${state.org}/campaigns` }, '← Campaigns')),
    h('div', { class: 'page-head' }, title, status, h('span', { class: 'spacer' }), updated),
    problem, notice, actions,
    h('div', { class: 'stats' }, STATS.map((s) => h('div', { class: `stat stat-${s}`, 'data-stat': s },
      statTiles.get(s), h('span', { class: 'stat-label' }, s)))),
    progress, facts,
    h('div', { class: 'page-head' }, h('h2', {}, 'Deliveries'), h('span', { class: 'spacer' }), filter, csv),
    holder, deliveries.el);
  show();
  await deliveries.reset();

  // Live: the campaign and the page of deliveries on screen, every 2 s while the
  // tab is visible.
  let inFlight = false;
  const timer = setInterval(async () => {
    if (document.hidden || inFlight) return;
    inFlight = true;
    try {
      campaign = await api('GET', orgPath(base));
      show();
      await deliveries.reload();
    } catch (err) {
      notice.replaceChildren(errorBox(err));
    } finally {
      inFlight = false;
    }
  }, 2000);
  onCleanup(() => clearInterval(timer));
}

// ---- API keys -------------------------------------------------------------

async function pageKeys(view) {
  document.title = 'API keys · bcrm';
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const created = h('div', {});
  const form = h('form', { class: 'card', novalidate: true },
    h('h2', {}, 'Create an API key'),
    h('div', { class: 'row' }, field('Name', h('input', { name: 'name', required: true, maxlength: 200,
      placeholder: 'e.g. reporting script' }), { name: 'name' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create key')));

  async function load() {
    const { api_keys: keys } = await api('GET', orgPath('/api-keys'));
    const rows = keys.map((k) => {
      const revoke = k.revoked_at ? null : h('button', { type: 'button', class: 'danger small' }, 'Revoke');
      if (revoke) {
        revoke.addEventListener('click', async () => {
          if (!window.confirm(`Revoke "${k.name}"? Programs using it stop working at once.`)) return;
          try {
            await api('DELETE', orgPath(`/api-keys/${encodeURIComponent(k.id)}`));
            await load();
          } catch (err) {
            list.prepend(errorBox(err));
          }
        });
      }
      return h('tr', { 'data-key': k.id }, h('td', {}, k.name), h('td', { class: 'mono' }, `${k.prefix}…`),
        timeCell(k.created_at), h('td', {}, k.revoked_at ? badge('revoked') : badge('active')),
        h('td', {}, revoke));
    });
    list.replaceChildren(table(['Name', 'Key', 'Created', 'Status', ''], rows, 'No API key yet.'));
  }

  onSubmit(form, async () => {
    const key = await api('POST', orgPath('/api-keys'), { name: form.elements.name.value.trim() });
    form.reset();
    const code = h('code', { class: 'secret-value' }, key.key);
    const copy = h('button', { type: 'button', class: 'secondary small' }, 'Copy');
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(key.key);
        copy.textContent = 'Copied';
      } catch (e) {
        copy.textContent = 'Select and copy it by hand';
      }
    });
    const dismiss = h('button', { type: 'button', class: 'link' }, 'Done');
    dismiss.addEventListener('click', () => created.replaceChildren());
    created.replaceChildren(h('div', { class: 'secret', role: 'status' },
      h('p', {}, h('strong', {}, `Key "${key.name}" created.`), ' Copy it now: it is shown only once.'),
      h('div', { class: 'secret-row' }, code, copy, dismiss),
      h('p', { class: 'muted small' }, 'Programs send it as: Authorization: Bearer <key>')));
    await load();
  });

  view.append(h('div', { class: 'page-head' }, h('h1', {}, 'API keys')), created, list, form);
  await load();
}

// ---- start ----------------------------------------------------------------

document.getElementById('org-switcher').addEventListener('change', (ev) => {
  const section = (location.hash.match(/^#\/o\/[^/]+\/([a-z]+)/) || [])[1] || 'campaigns';
  go(`#/o/${ev.target.value}/${section}`);
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/v1/logout');
  } catch (e) {
    // Logged out already, or the api is gone: forget the session either way.
  }
  state.me = null;
  state.csrf = null;
  state.org = null;
  updateHeader();
  go('#/login');
});

window.addEventListener('hashchange', render);

(async () => {
  try {
    await loadMe();
  } catch (err) {
    main.replaceChildren(errorBox(err));
    return;
  }
  render();
})();

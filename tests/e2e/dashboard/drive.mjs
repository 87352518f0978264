// drive.mjs: walks a person's way through the bcrm dashboard in Debian's chromium
// (playwright-core, no browser download), for tests/e2e/test_dashboard.py.
//
// Input (environment): DASH_URL (the api, which serves the dashboard at /),
// DASH_SLACK_TOKEN (the simulator's bot token), DASH_SIM_URL and DASH_TEAM_ID (the
// simulator's control address and the token's workspace, to revoke and restore the
// token), DASH_EXPECT_SENT (how many users a campaign to everyone reaches), DASH_OUT
// (a directory for screenshots and the browser profile), DASH_EMAIL. Output: one JSON line on stdout with what was seen;
// the Python test checks it against the API, the database and the simulator.
// Any failed step throws: the process exits 1 with the step named on stderr.
import { chromium, request } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const BASE = process.env.DASH_URL;
const TOKEN = process.env.DASH_SLACK_TOKEN;
const SIM_URL = process.env.DASH_SIM_URL;
const TEAM_ID = process.env.DASH_TEAM_ID;
const EXPECT_SENT = Number(process.env.DASH_EXPECT_SENT);
const OUT = process.env.DASH_OUT;
const EMAIL = process.env.DASH_EMAIL || 'dash@e2e.bcrm.test';
const PASSWORD = 'correct horse battery staple';
const CAMPAIGN_TIMEOUT_MS = Number(process.env.DASH_CAMPAIGN_TIMEOUT_MS || 120000);

const result = { steps: [] };
let page;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function step(name, fn) {
  process.stderr.write(`dashboard: ${name}\n`);
  try {
    await fn();
    result.steps.push(name);
  } catch (err) {
    err.message = `${name}: ${err.message}`;
    await shot('failed').catch(() => {});
    throw err;
  }
}

async function shot(name) {
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  (result.screenshots ||= []).push(file);
}

// The text of the error shown next to the field labelled label.
async function fieldError(label) {
  const fieldBox = page.locator('.field', { has: page.getByLabel(label, { exact: true }) });
  const error = fieldBox.locator('.field-error');
  await error.waitFor({ timeout: 10000 });
  return error.innerText();
}

const profile = fs.mkdtempSync(path.join(OUT, 'chromium-profile-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});

// Every CSP violation of every page, and every console error and page error.
const consoleErrors = [];
await context.addInitScript(() => {
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
  });
});
// State-changing API calls that went out without the CSRF token.
const withoutCsrf = [];
// Any request that left the api's origin (there must be none: no CDN, no font).
const foreign = [];
context.on('request', (req) => {
  const url = new URL(req.url());
  if (url.origin !== new URL(BASE).origin && !['data:', 'blob:'].includes(url.protocol)) {
    foreign.push(req.url());
  }
  if (url.pathname.startsWith('/v1/') && !['GET', 'HEAD'].includes(req.method())
      && !['/v1/login', '/v1/signup'].includes(url.pathname)
      && !req.headers()['x-csrf-token']) {
    withoutCsrf.push(`${req.method()} ${url.pathname}`);
  }
});

try {
  page = context.pages()[0] || await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
  page.on('dialog', (dialog) => dialog.accept());

  await step('the dashboard is served at / with its security headers', async () => {
    const res = await page.goto(`${BASE}/`);
    check(res.status() === 200, `GET / answered ${res.status()}`);
    const headers = res.headers();
    result.csp = headers['content-security-policy'];
    check(/default-src 'self'/.test(result.csp || ''), `CSP ${result.csp}`);
    check(/frame-ancestors 'none'/.test(result.csp || ''), `CSP ${result.csp}`);
    check(headers['x-content-type-options'] === 'nosniff', 'nosniff');
    check(Boolean(headers['referrer-policy']), 'Referrer-Policy');
    await page.waitForURL(/#\/login$/);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await shot('01-login');
  });

  await step('sign up: a short password is refused next to its field', async () => {
    await page.getByRole('link', { name: 'Sign up' }).click();
    await page.getByLabel('Your name').fill('Dana Dashboard');
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill('short');
    await page.getByLabel('Organisation').fill('Dashboard Agency');
    await page.getByRole('button', { name: 'Sign up' }).click();
    result.password_error = await fieldError('Password');
    check(/8 characters/.test(result.password_error), result.password_error);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/bots$/);
    result.org_id = page.url().match(/#\/o\/([^/]+)\//)[1];
  });

  await step('connect a bot: a wrong token is refused next to its field', async () => {
    await page.getByLabel('Bot token').fill('xoxb-not-a-real-token');
    await page.getByRole('button', { name: 'Connect' }).click();
    result.token_error = await fieldError('Bot token');
    await page.getByLabel('Bot token').fill(TOKEN);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/bots\/[^/]+$/);
    result.bot_id = page.url().match(/\/bots\/([^/]+)$/)[1];
  });

  await step('the bot\'s users, read live and paged', async () => {
    const rows = page.locator('tr[data-user]');
    await rows.first().waitFor();
    result.users_page1 = await rows.count();
    const firstIds = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.user));
    await shot('02-bot-users');
    await page.getByRole('button', { name: 'Next →' }).click();
    await page.waitForFunction((first) => {
      const tr = document.querySelector('tr[data-user]');
      return tr && tr.dataset.user !== first;
    }, firstIds[0]);
    const secondIds = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.user));
    result.users_page2 = secondIds.length;
    check(!secondIds.some((id) => firstIds.includes(id)), 'page 2 repeats users of page 1');
    await page.getByRole('button', { name: '← Previous' }).click();
    await page.waitForFunction((first) => document.querySelector('tr[data-user]')?.dataset.user === first,
      firstIds[0]);
  });

  await step('a bot whose token Slack refused: badge, alert, reconnect', async () => {
    // Slack revokes the token; a live read of the bot's users (by the same person,
    // outside this page) finds out and the bot becomes token_invalid.
    const sim = await request.newContext();
    const faults = async (body) => {
      const res = await sim.post(`${SIM_URL}/_sim/faults`, { data: body });
      check(res.status() === 200, `sim faults ${res.status()}`);
    };
    await faults({ revoke_token: TEAM_ID });
    const other = await request.newContext({ baseURL: BASE });
    const login = await other.post('/v1/login', { data: { email: EMAIL, password: PASSWORD } });
    check(login.status() === 200, `login ${login.status()}`);
    const users = await other.get(`/v1/orgs/${result.org_id}/bots/${result.bot_id}/users`);
    check(users.status() === 502, `users of a revoked bot answered ${users.status()}`);
    await other.dispose();

    await page.reload();
    await page.locator('.page-head .badge-token_invalid').waitFor();
    result.bot_alert = await page.locator('[data-bot-alert]').innerText();
    await page.getByRole('link', { name: '← Bots' }).click();
    await page.locator('td .badge-token_invalid').waitFor();
    result.list_badge = await page.locator('td .badge-token_invalid').innerText();
    await page.goBack();
    await page.locator('[data-reconnect]').waitFor();
    await shot('02b-bot-token-invalid');
    // Still revoked: Slack's refusal lands next to the field, nothing changes.
    await page.getByLabel('New bot token').fill(TOKEN);
    await page.getByRole('button', { name: 'Reconnect' }).click();
    result.reconnect_error = await fieldError('New bot token');
    // The owner fixed it on Slack's side: the same token works again.
    await faults({ restore_token: TEAM_ID });
    await sim.dispose();
    await page.getByLabel('New bot token').fill(TOKEN);
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await page.locator('[data-reconnected]').waitFor();
    result.reconnected_notice = await page.locator('[data-reconnected]').innerText();
    await page.locator('.page-head .badge-active').waitFor();
    check(await page.locator('[data-reconnect]').count() === 0, 'the form is gone');
    check(await page.getByLabel('New bot token').count() === 0, 'the token field is gone');
    await page.locator('tr[data-user]').first().waitFor();
    result.users_after_reconnect = await page.locator('tr[data-user]').count();
    await shot('02c-bot-reconnected');
  });

  await step('create and schedule a campaign to everyone, now', async () => {
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.getByRole('link', { name: 'New campaign' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Dashboard hello');
    await page.getByLabel('Message').fill('Hello {{first_name|there}}, from the dashboard.');
    await page.getByLabel('Everyone the bot can reach', { exact: false }).check();
    await page.getByLabel('Now', { exact: true }).check();
    await page.getByRole('button', { name: 'Create and schedule' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/campaigns\/[0-9a-f-]{36}$/);
    result.campaign_id = page.url().match(/\/campaigns\/([^/]+)$/)[1];
  });

  await step('the campaign page shows it reach completed, live', async () => {
    const seen = new Set();
    const deadline = Date.now() + CAMPAIGN_TIMEOUT_MS;
    for (;;) {
      const status = await page.locator('#campaign-status').getAttribute('data-status');
      seen.add(status);
      if (status === 'completed') break;
      check(Date.now() < deadline, `not completed after ${CAMPAIGN_TIMEOUT_MS} ms (status ${status})`);
      await page.waitForTimeout(250);
    }
    result.statuses_seen = [...seen];
    const stats = {};
    for (const name of ['total', 'pending', 'sent', 'failed', 'unknown']) {
      stats[name] = Number(await page.locator(`[data-stat=${name}] .stat-value`).innerText());
    }
    result.page_stats = stats;
    check(stats.sent === EXPECT_SENT && stats.total === EXPECT_SENT,
      `stats ${JSON.stringify(stats)}, expected ${EXPECT_SENT} sent`);
    await page.locator('tr[data-delivery]').first().waitFor();
    await shot('03-campaign');
  });

  await step('the deliveries filter and the CSV link', async () => {
    await page.getByLabel('Delivery status').selectOption('failed');
    await page.locator('td.empty', { hasText: 'No deliveries' }).waitFor();
    await page.getByLabel('Delivery status').selectOption('sent');
    await page.locator('tr[data-delivery]').first().waitFor();
    result.deliveries_rows = await page.locator('tr[data-delivery]').count();
    const href = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href');
    check(href.includes('format=csv') && href.includes('status=sent'), href);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    const csvPath = path.join(OUT, 'deliveries.csv');
    await download.saveAs(csvPath);
    result.csv_filename = download.suggestedFilename();
    result.csv_rows = fs.readFileSync(csvPath, 'utf8').trim().split(/\r?\n/).length - 1;
  });

  await step('a campaign at a moment: schedule, pause, resume, cancel', async () => {
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.locator('tr[data-campaign]').first().waitFor();
    await page.getByRole('link', { name: 'New campaign' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Later');
    await page.getByLabel('Message').fill('Later, {{first_name}}.');
    await page.getByLabel('At a moment').check();
    // The field's default is the next full hour of the browser's clock.
    await page.getByRole('button', { name: 'Create and schedule' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/campaigns\/[0-9a-f-]{36}$/);
    const status = page.locator('#campaign-status');
    // The scheduler loads a run due within 26 hours at once: scheduled, then running.
    const open = '#campaign-status[data-status=scheduled], #campaign-status[data-status=running]';
    await page.locator(open).waitFor();
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('#campaign-status[data-status=paused]').waitFor();
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.locator(open).waitFor();
    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await page.locator('#campaign-status[data-status=cancelled]').waitFor();
    result.later_status = await status.getAttribute('data-status');
  });

  await step('local time needs a fallback zone: the error lands next to it', async () => {
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.getByRole('link', { name: 'New campaign' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Local nine');
    await page.getByLabel('Message').fill('Good morning');
    await page.getByLabel('At a local time', { exact: false }).check();
    await page.getByLabel('Fallback zone').fill('');
    await page.getByRole('button', { name: 'Save as draft' }).click();
    result.fallback_error = await fieldError('Fallback zone');
    await page.getByLabel('Fallback zone').fill('Mars/Olympus_Mons');
    await page.getByRole('button', { name: 'Save as draft' }).click();
    result.fallback_error2 = await fieldError('Fallback zone');
  });

  await step('a draft to two users picked from the live list', async () => {
    await page.getByLabel('Name', { exact: true }).fill('Two people');
    await page.getByLabel('Fallback zone').fill('Europe/Berlin');
    await page.getByLabel('Selected users').check();
    const boxes = page.locator('.picker tbody input[type=checkbox]:not([disabled])');
    await page.locator('.picker tbody input[type=checkbox][disabled]').first().waitFor();
    await boxes.nth(1).waitFor();
    result.picked = [await boxes.nth(0).getAttribute('value'), await boxes.nth(1).getAttribute('value')];
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.locator('[data-selected-count]', { hasText: '2 selected' }).waitFor();
    await shot('04-new-campaign');
    await page.getByRole('button', { name: 'Save as draft' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/campaigns\/[0-9a-f-]{36}$/);
    await page.locator('#campaign-status[data-status=draft]').waitFor();
    await page.locator('dd', { hasText: '2 selected users' }).waitFor();
    result.draft_id = page.url().match(/\/campaigns\/([^/]+)$/)[1];
  });

  await step('the campaigns list', async () => {
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.locator('tr[data-campaign]').nth(2).waitFor();
    result.campaigns_listed = await page.locator('tr[data-campaign]').count();
    await shot('05-campaigns');
  });

  await step('API keys: created and shown once, listed, revoked', async () => {
    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    await page.getByLabel('Name', { exact: true }).fill('e2e script');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.locator('.secret-value').innerText();
    check(key.startsWith('bcrm_'), 'the key is shown');
    const probe = await request.newContext();
    const me = await probe.get(`${BASE}/v1/me`, { headers: { Authorization: `Bearer ${key}` } });
    check(me.status() === 200, `the new key answers ${me.status()}`);
    await shot('06-api-keys');
    await page.getByRole('button', { name: 'Done' }).click();
    check(await page.locator('.secret-value').count() === 0, 'the key is gone from the page');
    const row = page.locator('tr[data-key]', { hasText: 'e2e script' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await row.locator('.badge-revoked').waitFor();
    const after = await probe.get(`${BASE}/v1/me`, { headers: { Authorization: `Bearer ${key}` } });
    result.revoked_key_status = after.status();
    await probe.dispose();
  });

  await step('the org switcher: another org where this account is a viewer', async () => {
    // Someone else signs up and adds this account to their org, outside the browser.
    const other = await request.newContext({ baseURL: BASE });
    const signup = await other.post('/v1/signup', { data: {
      name: 'Other Owner', email: 'other@e2e.bcrm.test', password: PASSWORD, org_name: 'Other Org' } });
    check(signup.status() === 201, `other signup ${signup.status()}`);
    const body = await signup.json();
    const add = await other.post(`/v1/orgs/${body.org.id}/members`, {
      data: { email: EMAIL, role: 'viewer' }, headers: { 'X-CSRF-Token': body.csrf_token } });
    check(add.status() === 201, `add member ${add.status()}`);
    await other.dispose();
    result.other_org_id = body.org.id;

    await page.reload();
    const switcher = page.locator('#org-switcher');
    await page.locator('#org-switcher option').nth(1).waitFor({ state: 'attached' });
    await switcher.selectOption(body.org.id);
    await page.waitForURL(new RegExp(`#/o/${body.org.id}/keys$`));
    // A viewer may not manage keys: the API's 403 is shown, readably.
    await page.locator('.form-error').first().waitFor();
    result.viewer_error = await page.locator('.form-error').first().innerText();
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    await page.locator('td.empty', { hasText: 'No campaign yet' }).waitFor();
    await switcher.selectOption(result.org_id);
    await page.locator('tr[data-campaign]').first().waitFor();
  });

  await step('log out, log in again; after a reload the CSRF token still goes out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/#\/login$/);
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('.form-error').waitFor();
    result.login_error = await page.locator('.form-error').innerText();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/#\/o\/[^/]+\/campaigns$/);
    await page.goto(`${BASE}/#/o/${result.org_id}/campaigns/${result.draft_id}`);
    await page.reload();
    await page.locator('#campaign-status[data-status=draft]').waitFor();
    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await page.locator('#campaign-status[data-status=cancelled]').waitFor();
  });

  await step('nothing kept in the browser\'s storage; no CSP violation; nothing foreign', async () => {
    result.storage = await page.evaluate(() => ({
      local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));
    result.csp_violations = await page.evaluate(() => window.__cspViolations.slice());
    result.console_errors = consoleErrors.slice();
    // The detector itself works: an inline style is refused and reported.
    await page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body { color: red; }';
      document.head.append(style);
    });
    await page.waitForFunction(() => window.__cspViolations.length > 0, null, { timeout: 5000 })
      .catch(() => {});
    result.csp_probe = await page.evaluate(() => window.__cspViolations.slice());
    result.csp_probe_console = consoleErrors.slice(result.console_errors.length);
  });
} finally {
  result.console_errors ||= consoleErrors;
  result.without_csrf = withoutCsrf;
  result.foreign_requests = foreign;
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// SirsiNexus coordinator dashboard. Signs in with the REST API, keeps the access token in
// sessionStorage (refreshing it before it expires), and shows one project's nodes, functions
// and agents (polled every 5 s and on live events) and its invocations, live over
// /ws/events. Plain DOM, no dependencies; every piece of data is written with textContent.
'use strict';

const POLL_MS = 5000;
const ERROR_WINDOW_MS = 5 * 60 * 1000;
const MAX_INVOCATION_ROWS = 200;
const AGENT_PAGE = 100;
const REFRESH_BEFORE_EXPIRY_MS = 60 * 1000;
const MAX_BACKOFF_MS = 30 * 1000;
const LIVE_TYPES = [
  'invocation_queued', 'invocation_started', 'invocation_finished', 'invocation_dead',
  'function_deployed', 'agent_created', 'agent_changed', 'agent_deleted',
];
const STORED = ['token', 'refresh', 'expires', 'email'];

const $ = (id) => document.getElementById(id);

const store = {
  get: (key) => sessionStorage.getItem(`nexus.${key}`),
  set: (key, value) => sessionStorage.setItem(`nexus.${key}`, String(value)),
  clear: () => STORED.forEach((key) => sessionStorage.removeItem(`nexus.${key}`)),
};

const state = {
  projects: [],
  project: null, // the selected ProjectView: {id, name, display_name, role, created_at}
  functions: [], // the last FunctionView list
  versions: new Map(), // function name -> its version numbers, newest first
  outcomes: new Map(), // function name -> [{t, error}], from invocation_finished events
  pollTimer: null,
  refreshTimer: null,
  socket: null,
  socketGen: 0, // bumped on every close, so a stale socket's callbacks do nothing
  reconnectTimer: null,
  backoff: 1000,
  lastEventId: null,
};

class AuthError extends Error {}

// ---- DOM helpers -------------------------------------------------------------------------

/** An element with properties (`class`, `text`, `data-*`, or DOM properties) and children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('data-')) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const cell = (content, className) => el('td', { class: className }, content ?? '');
const badge = (text) => el('span', { class: `badge state-${text}`, text });
const code = (text) => (text === undefined ? '' : el('code', { class: 'id', text }));

/** Replaces the rows of table `id`, or shows `emptyText` when there are none. */
function fillTable(id, rows, emptyText) {
  const table = $(id);
  if (rows.length > 0) return table.tBodies[0].replaceChildren(...rows);
  const colSpan = table.tHead.rows[0].cells.length;
  return table.tBodies[0].replaceChildren(el('tr', {}, el('td', { class: 'empty', colSpan, text: emptyText })));
}

function setStatus(section, text) {
  const status = $(`${section}-status`);
  status.textContent = text || '';
  status.hidden = !text;
}

/** Milliseconds of an RFC 3339 time, its fraction cut to milliseconds for every browser. */
const parseTime = (iso) => Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1'));

function time(iso) {
  const millis = parseTime(iso);
  return el('span', { title: iso, text: Number.isNaN(millis) ? '' : new Date(millis).toLocaleTimeString() });
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - parseTime(iso)) / 1000);
  let text = '';
  if (seconds < 60) text = `${seconds.toFixed(1)} s ago`;
  else if (seconds < 3600) text = `${Math.floor(seconds / 60)} min ago`;
  else if (Number.isFinite(seconds)) text = `${Math.floor(seconds / 3600)} h ago`;
  return el('span', { title: iso, text });
}

// ---- HTTP and tokens ---------------------------------------------------------------------

function request(path, { method = 'GET', body, auth = true } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth) headers.authorization = `Bearer ${store.get('token')}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return fetch(path, { method, headers, body: payload, cache: 'no-store' });
}

/** The message of an error response (`{"error":{"code","message","request_id"}}`). */
async function errorMessage(response) {
  const body = await response.json().catch(() => null);
  return body?.error?.message || `HTTP ${response.status}`;
}

/** Calls the API as the signed-in user; a 401 that a token refresh cannot cure signs out. */
async function api(path, options = {}) {
  let response = await request(path, options);
  if (response.status === 401 && store.get('refresh') && (await refreshTokens())) {
    response = await request(path, options);
  }
  if (response.status === 401) {
    showLogin('Your session has ended. Sign in again.');
    throw new AuthError('unauthenticated');
  }
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.status === 204 ? null : response.json();
}

const projectPath = (project) => `/v1/projects/${encodeURIComponent(project.name)}`;

function saveTokens(tokens) {
  store.set('token', tokens.access_token);
  if (tokens.refresh_token) store.set('refresh', tokens.refresh_token);
  store.set('expires', Date.now() + tokens.expires_in * 1000);
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  if (!store.get('refresh')) return;
  const left = Number(store.get('expires')) - Date.now();
  const margin = Math.min(REFRESH_BEFORE_EXPIRY_MS, left / 2);
  state.refreshTimer = setTimeout(refreshTokens, Math.max(1000, left - margin));
}

let refreshing = null;

/** Exchanges the refresh token (valid once) for new tokens, one exchange at a time. */
function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const refreshToken = store.get('refresh');
      if (!refreshToken) return false;
      const response = await request('/v1/auth/refresh',
        { method: 'POST', body: { refresh_token: refreshToken }, auth: false });
      if (!response.ok) return false;
      saveTokens(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// ---- Signing in and out ------------------------------------------------------------------

function showLogin(message) {
  stopAll();
  store.clear();
  $('main').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-message').textContent = message || '';
  $('login').elements.email.focus();
}

async function onLogin(event) {
  event.preventDefault();
  const form = $('login');
  const email = form.elements.email.value.trim();
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  $('login-message').textContent = '';
  try {
    const body = { email, password: form.elements.password.value };
    const response = await request('/v1/auth/login', { method: 'POST', body, auth: false });
    if (!response.ok) {
      $('login-message').textContent = response.status === 401
        ? 'Wrong email or password.' : await errorMessage(response);
      return;
    }
    saveTokens(await response.json());
    store.set('email', email);
    form.reset();
    await start();
  } catch (error) {
    $('login-message').textContent = `Cannot sign in: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  await api('/v1/auth/logout', { method: 'POST' }).catch(() => {}); // out here whatever it says
  showLogin('You have signed out.');
}

function stopAll() {
  clearInterval(state.pollTimer);
  clearTimeout(state.refreshTimer);
  state.pollTimer = null;
  closeLive();
  state.project = null;
}

/** Shows the main view, loads the user's projects and starts polling. */
async function start() {
  $('login').hidden = true;
  $('main').hidden = false;
  $('session').hidden = false;
  $('user').textContent = store.get('email') || '';
  scheduleRefresh();
  try {
    await loadProjects();
  } catch (error) {
    if (!(error instanceof AuthError)) $('main-message').textContent = `Cannot list projects: ${error.message}`;
    return;
  }
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(() => {
    if (!document.hidden) refreshAll();
  }, POLL_MS);
}

// ---- Projects ----------------------------------------------------------------------------

const hashProject = () => new URLSearchParams(location.hash.slice(1)).get('project');

async function loadProjects() {
  state.projects = await api('/v1/projects');
  $('project').replaceChildren(...state.projects.map((project) => el('option', {
    value: project.name,
    text: project.display_name && project.display_name !== project.name
      ? `${project.display_name} (${project.name})` : project.name,
  })));
  $('main-message').textContent = state.projects.length === 0
    ? 'You are not a member of any project yet.' : '';
  selectProject(hashProject());
}

/** Shows project `name` (else the first), and records it in the URL hash. */
function selectProject(name) {
  const project = state.projects.find((candidate) => candidate.name === name) || state.projects[0];
  if (!project) return;
  $('project').value = project.name;
  if (hashProject() !== project.name) {
    history.replaceState(null, '', `#project=${encodeURIComponent(project.name)}`);
  }
  if (state.project && state.project.id === project.id) return;
  state.project = project;
  resetProjectView();
  connectLive();
  refreshAll();
}

function resetProjectView() {
  state.functions = [];
  state.versions.clear();
  state.outcomes.clear();
  state.lastEventId = null;
  for (const id of ['nodes', 'functions', 'agents']) {
    fillTable(id, [], 'Loading…');
    setStatus(id, '');
  }
  fillTable('invocations', [], 'Waiting for invocations…');
  setStatus('invocations', '');
}

// ---- Polling -----------------------------------------------------------------------------

/** Loads one section of the current project: never two loads at once, one more if asked
 *  during a load; failures go to the section's status line. */
function sectionLoader(section, load) {
  let running = false;
  let again = false;
  const once = async (project) => {
    try {
      const note = await load(project);
      if (project === state.project) setStatus(section, note);
    } catch (error) {
      if (error instanceof AuthError || project !== state.project) return;
      setStatus(section, `Cannot load: ${error.message}`);
      if ($(section).querySelector('td.empty')) fillTable(section, [], 'Unavailable.');
    }
  };
  return async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      if (state.project) await once(state.project);
    } while (again);
    running = false;
  };
}

/** Calls `action` once at the end of `ms` after the first of any number of calls. */
function throttled(action, ms) {
  let timer = null;
  return () => {
    timer ??= setTimeout(() => {
      timer = null;
      action();
    }, ms);
  };
}

const refresh = {
  nodes: sectionLoader('nodes', loadNodes),
  functions: sectionLoader('functions', loadFunctions),
  agents: sectionLoader('agents', loadAgents),
};
const nodesSoon = throttled(refresh.nodes, 1000);
const agentsSoon = throttled(refresh.agents, 300);
const functionsRenderSoon = throttled(renderFunctions, 500);

function refreshAll() {
  refresh.nodes();
  refresh.functions();
  refresh.agents();
}

// ---- Nodes -------------------------------------------------------------------------------

async function loadNodes(project) {
  const { nodes } = await api(`${projectPath(project)}/nodes`);
  if (project !== state.project) return;
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  fillTable('nodes', nodes.map(nodeRow), 'No edge nodes.');
}

function nodeRow(node) {
  const slots = node.instance_slots;
  const meter = el('meter', {
    min: 0, max: Math.max(1, slots), value: node.in_flight, low: slots * 0.5, high: slots * 0.85,
    optimum: 0, title: `${node.in_flight} of ${slots} instance slots in use`,
  });
  return el('tr', { class: `node state-${node.state}`, 'data-node': node.id },
    cell(el('span', { text: node.name, title: `${node.address} (${node.id})` })),
    cell(node.region),
    cell(badge(node.state)),
    cell(el('div', { class: 'load' }, meter, `${node.in_flight} / ${slots}`)),
    cell(node.free_slots, 'num'),
    cell(node.queued, 'num'),
    cell(ago(node.last_heartbeat_at)));
}

// ---- Functions ---------------------------------------------------------------------------

async function loadFunctions(project) {
  const functions = await api(`${projectPath(project)}/functions`);
  if (project !== state.project) return;
  await Promise.all(functions.filter(needsVersions).map((fn) => loadVersions(project, fn.name)));
  if (project !== state.project) return;
  state.functions = functions;
  renderFunctions();
}

/** Whether the versions of `fn` are unknown, or older than one of its aliases names. */
function needsVersions(fn) {
  const newest = state.versions.get(fn.name)?.[0];
  if (newest === undefined) return true;
  return fn.aliases.some((alias) => alias.version > newest || alias.canary?.version > newest);
}

async function loadVersions(project, name) {
  const detail = await api(`${projectPath(project)}/functions/${encodeURIComponent(name)}`);
  if (project !== state.project) return;
  const numbers = (detail.versions || []).map((version) => version.version);
  state.versions.set(name, numbers.sort((a, b) => b - a));
}

function renderFunctions() {
  if (!state.project) return;
  const functions = [...state.functions].sort((a, b) => a.name.localeCompare(b.name));
  fillTable('functions', functions.map(functionRow), 'No functions deployed.');
}

function functionRow(fn) {
  const rate = errorRate(fn.name);
  return el('tr', { 'data-function': fn.name },
    cell(fn.name),
    cell(fn.placement),
    cell(aliasList(fn.aliases)),
    cell(versionList(state.versions.get(fn.name) || [])),
    cell(rate.text, rate.errors > 0 ? 'num rate-bad' : 'num'));
}

function aliasList(aliases) {
  if (aliases.length === 0) return el('span', { class: 'muted', text: 'none' });
  return el('div', {}, ...aliases.map((alias) => el('div',
    { class: 'alias', 'data-alias': alias.name },
    `${alias.name} → v${alias.version}`,
    alias.canary && ' ',
    alias.canary && el('span', {
      class: 'canary', text: `canary v${alias.canary.version} at ${alias.canary.weight}%`,
    }))));
}

function versionList(numbers) {
  const shown = numbers.slice(0, 5).map((number) => `v${number}`).join(', ');
  return numbers.length > 5 ? `${shown}, … (${numbers.length} in all)` : shown;
}

/** The share of 5xx among the `invocation_finished` events seen in the last 5 minutes. */
function errorRate(name) {
  const now = Date.now();
  const seen = (state.outcomes.get(name) || []).filter((outcome) => now - outcome.t <= ERROR_WINDOW_MS);
  state.outcomes.set(name, seen);
  if (seen.length === 0) return { text: 'n/a', errors: 0 };
  const errors = seen.filter((outcome) => outcome.error).length;
  return { text: `${((100 * errors) / seen.length).toFixed(1)}% (${errors}/${seen.length})`, errors };
}

function recordOutcome(event) {
  const seen = state.outcomes.get(event.function) || [];
  seen.push({ t: Date.now(), error: Number(event.status) >= 500 });
  state.outcomes.set(event.function, seen);
}

// ---- Agents ------------------------------------------------------------------------------

async function loadAgents(project) {
  const page = await api(`${projectPath(project)}/agents?limit=${AGENT_PAGE}`);
  if (project !== state.project) return undefined;
  fillTable('agents', page.agents.map(agentRow), 'No agents.');
  return page.next ? `Showing the first ${AGENT_PAGE} agents, in name order.` : undefined;
}

function agentRow(agent) {
  return el('tr', { 'data-agent': agent.id },
    cell(agent.name),
    cell(agent.function),
    cell(agent.alias),
    cell(badge(agent.state)),
    cell(code(agent.id)),
    cell(time(agent.updated_at)));
}

// ---- Live events -------------------------------------------------------------------------

function setLive(up) {
  $('live').dataset.state = up ? 'up' : 'down';
  $('live').textContent = up ? 'live' : 'reconnecting';
}

function closeLive() {
  state.socketGen += 1;
  clearTimeout(state.reconnectTimer);
  state.socket?.close();
  state.socket = null;
  setLive(false);
}

/** Opens /ws/events for the current project, resuming after the last event seen. */
function connectLive() {
  closeLive();
  if (!state.project || !store.get('token')) return;
  const generation = state.socketGen;
  const params = new URLSearchParams({
    project: state.project.name, type: LIVE_TYPES.join(','), access_token: store.get('token'),
  });
  if (state.lastEventId) params.set('after', state.lastEventId);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/ws/events?${params}`);
  state.socket = socket;
  socket.addEventListener('open', () => {
    if (generation !== state.socketGen) return;
    state.backoff = 1000;
    setLive(true);
  });
  socket.addEventListener('message', (message) => {
    if (generation === state.socketGen) onEvent(message.data);
  });
  socket.addEventListener('close', () => {
    if (generation !== state.socketGen) return;
    setLive(false);
    const delay = state.backoff * (0.5 + Math.random() / 2);
    state.backoff = Math.min(MAX_BACKOFF_MS, state.backoff * 2);
    state.reconnectTimer = setTimeout(connectLive, delay);
  });
}

/** Orders event ids (`<milliseconds>-<sequence>`). */
function compareIds(a, b) {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am - bm || as - bs;
}

function onEvent(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return;
  }
  if (event.type === 'missed') {
    setStatus('invocations', `Some events were missed (${event.message}); error rates may be incomplete.`);
    return;
  }
  if (typeof event.id === 'string') {
    if (state.lastEventId && compareIds(event.id, state.lastEventId) <= 0) return;
    state.lastEventId = event.id;
  }
  if (event.project && event.project !== state.project.id) return;
  const type = String(event.type || '');
  if (type.startsWith('invocation_')) {
    addInvocation(event);
    if (type === 'invocation_finished') {
      recordOutcome(event);
      functionsRenderSoon();
    }
    nodesSoon();
  } else if (type === 'function_deployed') {
    state.versions.delete(event.function);
    refresh.functions();
  } else if (type.startsWith('agent_')) {
    agentsSoon();
  }
}

/** The status of an invocation event: its key (for `data-status`), text and colour. */
function invocationStatus(event) {
  if (event.type === 'invocation_finished') {
    const status = Number(event.status);
    const kind = status >= 500 ? 'error' : status >= 400 ? 'client' : 'ok';
    return { key: String(event.status), text: String(event.status), kind };
  }
  if (event.type === 'invocation_started') {
    return { key: 'started', text: `started (attempt ${event.attempt ?? 1})`, kind: 'pending' };
  }
  if (event.type === 'invocation_dead') {
    return { key: 'dead', text: 'dead', kind: 'error', title: event.error };
  }
  return { key: 'queued', text: 'queued', kind: 'pending' };
}

/** The event's duration, from `duration_ms` or `duration_us`, in milliseconds; '' if neither. */
function duration(event) {
  const ms = event.duration_ms ?? (event.duration_us === undefined ? undefined : event.duration_us / 1000);
  if (ms === undefined || ms === null) return '';
  return `${Number(ms) < 10 ? Number(ms).toFixed(2) : Number(ms).toFixed(1)} ms`;
}

function addInvocation(event) {
  const status = invocationStatus(event);
  const row = el('tr', {
    class: `invocation status-${status.kind}`,
    'data-function': event.function ?? '',
    'data-status': status.key,
  },
  cell(time(event.at)),
  cell(event.function),
  cell(el('span', { text: status.text, title: status.title })),
  cell(duration(event), 'num'),
  cell(event.version === undefined ? '' : `v${event.version}`),
  cell(event.target),
  cell(code(event.invocation)),
  cell(code(event.agent)));
  const body = $('invocations').tBodies[0];
  body.querySelector('td.empty')?.closest('tr').remove();
  body.prepend(row);
  while (body.rows.length > MAX_INVOCATION_ROWS) body.lastElementChild.remove();
}

// ---- Start -------------------------------------------------------------------------------

async function boot() {
  $('login').addEventListener('submit', onLogin);
  $('signout').addEventListener('click', signOut);
  $('project').addEventListener('change', (event) => {
    location.hash = `project=${encodeURIComponent(event.target.value)}`;
  });
  window.addEventListener('hashchange', () => {
    if (state.projects.length > 0 && !$('main').hidden) selectProject(hashProject());
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.project) refreshAll();
  });
  if (!store.get('token')) return showLogin('');
  const expired = Number(store.get('expires')) - Date.now() < 5000;
  if (expired && !(await refreshTokens())) return showLogin('Your session has ended. Sign in again.');
  return start();
}

boot();

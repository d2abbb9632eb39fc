// Duct's Node.js shim: it starts generic, warms up its HTTP stack, says
// {"ready":true} on the control socket, then waits for one "load" message
// that turns it into an instance of a function version. The protocol is
// described in docs/instance-contract.md. Node.js 20 standard library only.

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import querystring from 'node:querystring';
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

const EMPTY = Buffer.alloc(0);
const UNSET = Symbol('unset');

// The loaded function. kind is 'http' or 'event'; fn is null until load.
const fn = {
  kind: '',
  fn: null,
  name: '',
  version: 0,
  memoryMB: 0,
  timeoutMs: 0,
};

// Log lines must reach Duct as they are written, whatever stdout is.
for (const s of [process.stdout, process.stderr]) {
  if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
}

const SELF = import.meta.url;

// logError writes err with its stack, cut where the shim's own frames
// begin: below them is only the server's machinery.
function logError(prefix, err) {
  let s = util.inspect(err);
  if (err instanceof Error && typeof err.stack === 'string') {
    const lines = err.stack.split('\n');
    const i = lines.findIndex((l) => l.includes(SELF));
    if (i > 0) s = s.replace(err.stack, lines.slice(0, i).join('\n'));
  }
  process.stderr.write(prefix + s + '\n');
}

// A handler error must never take the instance down.
process.on('uncaughtException', (err) => logError('Uncaught exception: ', err));
process.on('unhandledRejection', (err) => logError('Unhandled promise rejection: ', err));

// ---------------------------------------------------------------- request

class Request extends http.IncomingMessage {
  constructor(socket) {
    super(socket);
    this.rawBody = EMPTY;
    this._body = UNSET;
    this._query = undefined;
  }

  get path() {
    const u = this.url;
    const i = u.indexOf('?');
    return i < 0 ? u : u.slice(0, i);
  }

  get query() {
    if (this._query === undefined) {
      const u = this.url;
      const i = u.indexOf('?');
      this._query = i < 0 ? {} : querystring.parse(u.slice(i + 1));
    }
    return this._query;
  }

  set query(v) {
    this._query = v;
  }

  get body() {
    if (this._body === UNSET) this._body = parseBody(this.headers['content-type'], this.rawBody);
    return this._body;
  }

  set body(v) {
    this._body = v;
  }

  get invocationId() {
    return this.headers['x-duct-invocation-id'];
  }

  get(name) {
    const n = name.toLowerCase();
    if (n === 'referer' || n === 'referrer') return this.headers.referer ?? this.headers.referrer;
    return this.headers[n];
  }

  header(name) {
    return this.get(name);
  }
}

function isJSONType(ct) {
  if (ct === undefined) return false;
  const i = ct.indexOf(';');
  const t = (i < 0 ? ct : ct.slice(0, i)).trim().toLowerCase();
  return t === 'application/json' || t.endsWith('+json') || t === 'text/json';
}

function parseBody(ct, raw) {
  if (raw.length === 0) return undefined;
  const text = raw.toString();
  if (isJSONType(ct)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  if (ct !== undefined && ct.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    return querystring.parse(text);
  }
  return text;
}

// --------------------------------------------------------------- response

const TYPES = {
  html: 'text/html; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  json: 'application/json; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  xml: 'application/xml',
  csv: 'text/csv; charset=utf-8',
  bin: 'application/octet-stream',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  pdf: 'application/pdf',
};

class Response extends http.ServerResponse {
  status(code) {
    this.statusCode = code;
    return this;
  }

  set(name, value) {
    if (typeof name === 'object' && name !== null) {
      for (const k of Object.keys(name)) this.setHeader(k, name[k]);
    } else {
      this.setHeader(name, value);
    }
    return this;
  }

  header(name, value) {
    return this.set(name, value);
  }

  get(name) {
    return this.getHeader(name);
  }

  type(t) {
    const full = t.includes('/') ? t : TYPES[t.replace(/^\./, '').toLowerCase()] ?? 'application/octet-stream';
    this.setHeader('Content-Type', full);
    return this;
  }

  send(body) {
    if (this.writableEnded) throw new Error('duct: the response was already sent');
    switch (typeof body) {
      case 'string':
        if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'text/plain; charset=utf-8');
        break;
      case 'undefined':
        body = '';
        break;
      case 'object':
        if (body === null) {
          body = '';
        } else if (body instanceof Uint8Array) {
          if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'application/octet-stream');
        } else {
          return this.json(body);
        }
        break;
      default:
        return this.json(body);
    }
    const code = this.statusCode;
    if (code === 204 || code === 304 || (code >= 100 && code < 200)) {
      this.removeHeader('Content-Type');
      this.removeHeader('Content-Length');
      this.removeHeader('Transfer-Encoding');
      this.end();
      return this;
    }
    this.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    this.end(body);
    return this;
  }

  json(value) {
    const s = JSON.stringify(value);
    if (!this.hasHeader('content-type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    return this.send(s === undefined ? '' : s);
  }

  sendStatus(code) {
    this.statusCode = code;
    this.setHeader('Content-Type', 'text/plain; charset=utf-8');
    return this.send(http.STATUS_CODES[code] ?? String(code));
  }

  redirect(a, b) {
    const [code, url] = typeof a === 'number' ? [a, b] : [302, a];
    this.statusCode = code;
    this.setHeader('Location', url);
    this.setHeader('Content-Type', 'text/plain; charset=utf-8');
    return this.send(`${http.STATUS_CODES[code] ?? 'Redirecting'}. Redirecting to ${url}`);
  }
}

// ---------------------------------------------------------------- serving

function onRequest(req, res) {
  if (fn.fn === null) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('duct: no function loaded\n');
    return;
  }
  const h = req.headers;
  const cl = h['content-length'];
  if ((cl === undefined || cl === '0') && h['transfer-encoding'] === undefined) {
    invoke(req, res);
    return;
  }
  const chunks = [];
  let n = 0;
  req.on('data', (c) => {
    chunks.push(c);
    n += c.length;
  });
  req.on('end', () => {
    req.rawBody = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n);
    invoke(req, res);
  });
}

function invoke(req, res) {
  if (fn.kind === 'http') callHTTP(req, res);
  else callEvent(req, res);
}

async function callHTTP(req, res) {
  try {
    const v = await fn.fn(req, res);
    if (v !== undefined && !res.headersSent) res.send(v);
  } catch (err) {
    logError('', err);
    if (!res.headersSent) {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 21 });
      res.end('Internal Server Error');
    } else if (!res.writableEnded) {
      // Half a response must not look like a whole one.
      res.destroy();
    }
  }
}

class Context {
  constructor(invocationId, deadline) {
    this.invocationId = invocationId;
    this.functionName = fn.name;
    this.functionVersion = fn.version;
    this.memoryLimitInMB = fn.memoryMB;
    this.deadline = deadline;
  }

  getRemainingTimeInMillis() {
    return Math.max(0, this.deadline - Date.now());
  }
}

function deadlineOf(h) {
  const d = h['x-duct-deadline-ms'];
  if (d !== undefined) {
    const ms = Number(d);
    if (Number.isFinite(ms)) return ms;
  }
  return Date.now() + fn.timeoutMs;
}

function reply(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// errorBody names an error by its name, or by its class when a subclass
// kept the name "Error".
function errorBody(err) {
  const isErr = err instanceof Error;
  let type = 'Error';
  if (isErr) {
    type = err.name || 'Error';
    const cls = err.constructor && err.constructor.name;
    if (type === 'Error' && cls) type = cls;
  }
  return JSON.stringify({ errorType: type, errorMessage: isErr ? String(err.message) : String(err) });
}

async function callEvent(req, res) {
  let event;
  try {
    event = toEvent(req.headers, req.rawBody);
  } catch (err) {
    reply(res, 400, JSON.stringify({ errorType: 'InvalidEvent', errorMessage: err.message }));
    return;
  }
  const ctx = new Context(req.headers['x-duct-invocation-id'] ?? '', deadlineOf(req.headers));
  let out;
  try {
    const v = await fn.fn(event, ctx);
    out = v === undefined ? undefined : JSON.stringify(v);
  } catch (err) {
    logError('', err);
    reply(res, 500, errorBody(err));
    return;
  }
  if (out === undefined) {
    res.writeHead(204);
    res.end();
    return;
  }
  reply(res, 200, out);
}

function decodeHeader(v) {
  if (!v.includes('%')) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

// toEvent turns a request into the handler's event: a CloudEvent in binary
// or structured mode becomes its attribute object; anything else is the
// JSON body, or the text body when that is not JSON.
function toEvent(h, body) {
  const ct = h['content-type'];
  if (h['ce-specversion'] !== undefined) {
    const ev = {};
    for (const k in h) {
      if (k.startsWith('ce-')) ev[k.slice(3)] = decodeHeader(h[k]);
    }
    if (ct !== undefined) ev.datacontenttype = ct;
    if (body.length > 0) {
      const text = body.toString();
      if (ct === undefined || isJSONType(ct)) {
        try {
          ev.data = JSON.parse(text);
        } catch {
          ev.data = text;
        }
      } else {
        ev.data = text;
      }
    }
    return ev;
  }
  if (ct !== undefined && ct.toLowerCase().startsWith('application/cloudevents+json')) {
    try {
      return JSON.parse(body.toString());
    } catch (err) {
      throw new Error(`structured CloudEvent: ${err.message}`);
    }
  }
  if (body.length === 0) return null;
  const text = body.toString();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function newServer() {
  return http.createServer(
    {
      IncomingMessage: Request,
      ServerResponse: Response,
      // Duct owns timeouts and connection lifetimes.
      requestTimeout: 0,
      headersTimeout: 0,
      keepAliveTimeout: 0,
      noDelay: true,
      // The gateway admits up to 64 KiB of headers; Node's default is 16.
      maxHeaderSize: 64 * 1024 + 4096,
    },
    onRequest,
  );
}

// ----------------------------------------------------------------- warm-up

// warmUp sends a request of each signature through a throwaway server so
// that the first real request runs on a warm HTTP stack. It is best-effort:
// a sandbox without loopback falls back to a Unix socket, then gives up.
async function warmUp() {
  const tryOn = async (listenArgs, reqOpts) => {
    const srv = newServer();
    await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(...listenArgs, resolve);
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      if (!reqOpts.socketPath) reqOpts.port = srv.address().port;
      for (const kind of ['http', 'event']) {
        fn.kind = kind;
        fn.fn = kind === 'http' ? warmHTTP : warmEvent;
        await post({ ...reqOpts, agent, path: '/warm?a=1&b=2' }, '{"warm":true}');
      }
    } finally {
      fn.kind = '';
      fn.fn = null;
      agent.destroy();
      srv.close();
    }
  };
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 2000).unref());
  try {
    await Promise.race([tryOn([0, '127.0.0.1'], { host: '127.0.0.1' }), timeout]);
    return;
  } catch {
    // try a Unix socket
  }
  const sock = path.join(os.tmpdir(), `duct-warm-${process.pid}.sock`);
  try {
    await Promise.race([tryOn([sock], { socketPath: sock }), timeout]);
  } catch (err) {
    process.stderr.write(`duct: warm-up skipped: ${err.message}\n`);
  } finally {
    fs.rmSync(sock, { force: true });
  }
}

// warmLoader imports a throwaway CommonJS and ES module: the module
// loader initialises lazily, and would otherwise do it during load.
async function warmLoader() {
  let d;
  try {
    d = fs.mkdtempSync(path.join(os.tmpdir(), 'duct-warm-'));
    fs.writeFileSync(path.join(d, 'a.js'), 'exports.handler = function () {};\n');
    fs.writeFileSync(path.join(d, 'b.mjs'), 'export function handler() {}\n');
    await import(pathToFileURL(path.join(d, 'a.js')).href);
    await import(pathToFileURL(path.join(d, 'b.mjs')).href);
  } catch {
    // best effort
  } finally {
    if (d) fs.rmSync(d, { recursive: true, force: true });
  }
}

async function warmHTTP(req, res) {
  void req.query;
  void req.body;
  void req.get('content-type');
  res.status(200).set('X-Warm', '1').json({ ok: true, path: req.path });
}

async function warmEvent(event, ctx) {
  return { ok: true, remaining: ctx.getRemainingTimeInMillis() > 0, event };
}

function post(opts, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { ...opts, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } },
      (res) => {
        res.on('data', () => {});
        res.on('end', resolve);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// ------------------------------------------------------------------- load

function rel(dir, s) {
  return s.split(dir + path.sep).join('').split(pathToFileURL(dir).href + '/').join('');
}

// userStack keeps the frames of a stack that belong to the user's code.
function userStack(dir, err) {
  const stack = String((err && err.stack) || err);
  const lines = stack.split('\n').filter((l) => !/^\s+at /.test(l) || (!l.includes('node:') && !l.includes(SELF)));
  return rel(dir, lines.join('\n'));
}

// syntaxLocation asks node --check for the file, line and caret that a
// SyntaxError from import() of an ES module does not carry.
function syntaxLocation(file) {
  try {
    execFileSync(process.execPath, ['--check', file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
    return '';
  } catch (err) {
    const out = String(err.stderr || '');
    const end = out.search(/\n\s+at |\nNode\.js v/);
    return tidy(end < 0 ? out : out.slice(0, end));
  }
}

function tidy(s) {
  return s.replace(/\n{3,}/g, '\n\n').trim();
}

// sourceFiles lists the function's own JavaScript files, at most max.
function sourceFiles(dir, max) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (out.length >= max) return;
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(m|c)?js$/.test(e.name)) out.push(p);
    }
  };
  try {
    walk(dir);
  } catch {
    // best effort
  }
  return out;
}

// syntaxError describes a SyntaxError met while importing entry with its
// file, line and caret.
function syntaxError(dir, entry, file, err) {
  const stack = String(err.stack || '');
  if (!stack.startsWith('SyntaxError')) {
    // CommonJS decorates the stack with file:line, the line and a caret.
    const end = stack.search(/\n\s+at /);
    return tidy(rel(dir, end < 0 ? stack : stack.slice(0, end)));
  }
  const files = [file, ...sourceFiles(dir, 50).filter((f) => f !== file)];
  const until = Date.now() + 3000;
  for (const f of files) {
    if (Date.now() > until) break;
    const where = syntaxLocation(f);
    if (where) return rel(dir, where);
  }
  return `SyntaxError: ${err.message} (in ${entry} or a module it imports)`;
}

function exportsOf(mod) {
  const names = new Set(Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule'));
  const d = mod.default;
  if (d !== null && typeof d === 'object') for (const k of Object.keys(d)) names.add(k);
  if (d !== undefined && names.size === 0) names.add('default');
  return [...names];
}

async function load(msg) {
  if (fn.fn !== null) throw new Error('a function is already loaded');
  if (msg.signature !== 'http' && msg.signature !== 'event') {
    throw new Error(`unknown signature ${JSON.stringify(msg.signature)}: want http or event`);
  }
  if (typeof msg.dir !== 'string' || !path.isAbsolute(msg.dir)) throw new Error('load: dir must be an absolute path');
  if (typeof msg.entry !== 'string' || msg.entry === '') throw new Error('load: entry is missing');
  const handlerName = msg.handler || 'handler';
  const env = msg.env || {};
  for (const k of Object.keys(env)) process.env[k] = String(env[k]);
  process.chdir(msg.dir);
  const file = path.resolve(msg.dir, msg.entry);
  if (!fs.existsSync(file)) throw new Error(`entry file ${msg.entry} not found in ${msg.dir}`);

  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    if (err instanceof SyntaxError) throw new Error(syntaxError(msg.dir, msg.entry, file, err));
    let hint = '';
    if (err && (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND')) {
      hint = '\n(is the package listed in package.json dependencies?)';
    }
    throw new Error(`loading ${msg.entry} failed: ${userStack(msg.dir, err)}${hint}`);
  }

  let h = mod[handlerName];
  if (h === undefined && mod.default !== null && typeof mod.default === 'object') h = mod.default[handlerName];
  if (h === undefined && typeof mod.default === 'function' && handlerName in mod.default) h = mod.default[handlerName];
  if (typeof h !== 'function') {
    if (h !== undefined) {
      throw new Error(`module ${msg.entry} exports ${handlerName}, but it is ${h === null ? 'null' : 'a ' + typeof h}, not a function`);
    }
    const names = exportsOf(mod);
    let hint = '';
    if (typeof mod.default === 'function') {
      hint = `; its default export is a function: export it under the name ${handlerName}`;
    }
    throw new Error(
      `module ${msg.entry} does not export a function named ${handlerName} ` +
        `(exports: ${names.length ? names.join(', ') : 'none'})${hint}`,
    );
  }
  fn.name = String(msg.function ?? '');
  fn.version = msg.version ?? 0;
  fn.memoryMB = msg.memoryMB ?? 0;
  fn.timeoutMs = msg.timeoutMs ?? 60000;
  fn.kind = msg.signature;
  fn.fn = h;
}

// ---------------------------------------------------------------- control

function controlSocket() {
  const v = process.env.DUCT_CONTROL_FD;
  if (!v) {
    process.stderr.write('duct: DUCT_CONTROL_FD is not set: this program is started by Duct\n');
    process.exit(2);
  }
  const s = new net.Socket({ fd: Number(v), readable: true, writable: true });
  const bye = () => process.exit(0);
  s.on('end', bye);
  s.on('close', bye);
  s.on('error', bye);
  return s;
}

function listen(server) {
  server.on('error', (err) => {
    process.stderr.write(`duct: listen: ${err.message}\n`);
    process.exit(1);
  });
  const fd = process.env.DUCT_LISTEN_FD;
  if (fd) server.listen({ fd: Number(fd) });
  else server.listen(Number(process.env.PORT || 8080), '127.0.0.1');
}

async function main() {
  const ctl = controlSocket();
  const send = (obj, cb) => ctl.write(JSON.stringify(obj) + '\n', cb);
  let work = warmUp().then(warmLoader);
  const server = newServer();
  listen(server);

  let buf = '';
  ctl.setEncoding('utf8');
  ctl.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim() !== '') work = work.then(() => handle(line, send));
    }
  });

  await work;
  send({ ready: true });

  // SIGTERM: stop accepting, let the requests in progress finish, exit.
  // Connections kept alive count as busy until they go idle.
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setInterval(() => server.closeIdleConnections(), 20).unref();
  });
}

async function handle(line, send) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (err) {
    send({ ok: false, error: `bad control message: ${err.message}` });
    return;
  }
  if (msg.op !== 'load') {
    send({ ok: false, error: `unknown op ${JSON.stringify(msg.op)}` });
    return;
  }
  const already = fn.fn !== null;
  try {
    await load(msg);
    send({ ok: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (already) {
      send({ ok: false, error: message });
      return;
    }
    process.stderr.write(`duct: ${message}\n`);
    send({ ok: false, error: message }, () => process.exit(1));
    setTimeout(() => process.exit(1), 1000).unref();
  }
}

main();

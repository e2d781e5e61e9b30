// The sandbox host of one home (sandbox/boxhost.py starts it): srt's library loaded once, the
// place each sandboxed command of the home is wrapped in bubblewrap — then the host is done
// with it: no srt (node) process stays beside a sandboxed worker, and the host itself exits
// once no wrap came for IDLE_S.
//
// The box's network goes to looop's own filter (sandbox/netfilter.py), one per home: the wrapped
// line binds the filter's socket where srt's bridge would be, and the answer carries the
// credentials srt put in the box's proxy URL (a fresh 128-bit id per wrap as its user name),
// by which the filter knows the box and its allow list.
//
//   node boxhost.mjs LIB SOCKET CWD IDLE_S --ready-fd N
// LIB: srt's dist/index.js; SOCKET: where to serve (a private dir); CWD: the home's data dir,
// where srt would have started. Writes "ok" on fd N once it serves. Wire: one JSON line
// {"command", "settings", "filter", "join"} -> {"command", "user", "digest", "mark"} or
// {"error"} ("join": [looop's interpreter, its netjoin.py], optional);
// {"stop": true} ends it.
import { createServer } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, writeFileSync, writeSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [lib, sockPath, cwd, idleArg, readyFlag, readyArg] = process.argv.slice(2);
const readyFd = readyFlag === '--ready-fd' ? Number(readyArg) : -1;
const idleMs = Math.max(1, Number(idleArg) || 30) * 1000;
// A host killed outright left its bridge (srt's socat) and its folder: gone before anew.
const statePath = sockPath.replace(/\.sock$/, '.state');
try {
  const old = JSON.parse(readFileSync(statePath, 'utf8')).tmp;
  if (typeof old === 'string' && old.startsWith('/tmp/lsbx-')) {
    for (const pid of readdirSync('/proc')) {
      if (pid.charCodeAt(0) > 57) continue;
      try {
        const comm = readFileSync(`/proc/${pid}/comm`, 'latin1').trim();
        if (comm === 'socat' && readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(`UNIX-LISTEN:${old}/`))
          process.kill(Number(pid), 'SIGTERM');
      } catch {}
    }
    rmSync(old, { recursive: true, force: true });
  }
} catch {}
// srt names its bridge socket in TMPDIR: a short private one, so the path fits sun_path
const tmp = mkdtempSync('/tmp/lsbx-');
writeFileSync(statePath, JSON.stringify({ tmp, pid: process.pid }) + '\n', { mode: 0o600 });
process.env.TMPDIR = tmp;
process.chdir(cwd);
// `ps` shows its role in looop's words, as every long-lived process of looop's does
// (core/proctitle.py); its 15-byte name stays `looop-sbxhost`, as a sweep knows looop's own
process.title = `looop: sandbox host ${cwd}`;
try { writeFileSync('/proc/self/comm', 'looop-sbxhost'); } catch {}

const { SandboxManager, SandboxRuntimeConfigSchema } = await import(pathToFileURL(lib).href);
await SandboxManager.initialize({
  network: { allowedDomains: [], deniedDomains: [] },
  filesystem: { denyRead: [], allowWrite: [], denyWrite: [] },
});
const bridge = SandboxManager.getLinuxHttpSocketPath();
let last = Date.now();
let queue = Promise.resolve();
let inflight = 0;

async function finish(code) {
  try {
    await SandboxManager.reset();
  } catch {}
  try {
    unlinkSync(sockPath);
  } catch {}
  rmSync(tmp, { recursive: true, force: true });
  try {
    unlinkSync(statePath);
  } catch {}
  process.exit(code);
}

async function wrap(req) {
  const parsed = SandboxRuntimeConfigSchema.safeParse(req.settings);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { error: `srt refused the settings: ${issue?.path?.join('.') || '(top)'}: ${issue?.message}` };
  }
  if (typeof req.command !== 'string') return { error: 'no command to wrap' };
  if (typeof req.filter !== 'string' || !/^\/[A-Za-z0-9._\/-]+$/.test(req.filter))
    return { error: "no filter socket (looop's filter) to point the box at" };
  const id = randomBytes(16).toString('base64url');
  let command = await SandboxManager.wrapWithSandbox(req.command, undefined, parsed.data, undefined, {
    commandId: id,
  });
  // The box reaches looop's filter, not this host's proxy: bubblewrap binds the filter's
  // socket where srt's bridge would have been, and its relays connect there — bound after the
  // box's file system (srt binds its bridge before), so that it shows in the runtime dir every
  // box is denied (sandbox/srt.py), alone.
  const early = ` --bind ${bridge} ${bridge} `;
  if (count(command, early) !== 1 || count(command, DEV) !== 1)
    return { error: "srt's line does not bind its bridge where looop expects it" };
  command = command.replace(early, ' ').replace(DEV, ` --bind ${bridge} ${bridge}${DEV}`);
  command = command.split(bridge).join(req.filter);
  command = execLast(command);
  // The box's credentials, as srt put them in its proxy URL, with a token of its own (srt's is
  // the same for every box): the filter knows it by them.
  const m = /--setenv HTTP_PROXY '?http:\/\/([^:@'\s]+):([0-9a-f]+)@/.exec(command);
  if (!m) return { error: "srt's line carries no proxy credentials" };
  const user = decodeURIComponent(m[1]);
  const token = randomBytes(16).toString('hex');
  command = command.split(m[2]).join(token);
  command = joinFirst(command, req.join, req.filter, user, token);
  // the filter keeps only its digest: no file holds the token
  return { command, user, digest: createHash('sha256').update(token).digest('hex'), mark: m[1] };
}

const DEV = ' --dev /dev '; // the first mount after the box's file system in srt's line
const count = (text, part) => text.split(part).length - 1;

// srt's script starts a relay (socat, and a shell around it) per proxy port in the box, which
// then stay as long as the box. Where looop's interpreter and its netjoin are given, the box
// first hands its listening ports to the filter (sandbox/netjoin.py) and no relay starts; srt's
// relays start only where that fails. Only where the script is exactly srt's: both relay
// lines, then the line that ends their wait, once.
const RELAY = /\{ socat TCP6-LISTEN:(\d+),ipv6only=0,fork,reuseaddr,backlog=4096 UNIX-CONNECT:/g;
const SAFE_PATH = /^\/[A-Za-z0-9._\/-]+$/;
function joinFirst(command, join, filter, user, token) {
  if (!Array.isArray(join) || join.length !== 2 || !join.every(p => typeof p === 'string' && SAFE_PATH.test(p)))
    return command;
  if (!/^[A-Za-z0-9+\/=._-]+$/.test(user) || !/^[0-9a-f]+$/.test(token)) return command;
  const relays = [...command.matchAll(RELAY)];
  const end = command.indexOf(RELAYS_READY);
  if (relays.length !== 2 || end < 0 || command.indexOf(RELAYS_READY, end + 1) >= 0) return command;
  const start = relays[0].index;
  if (end < relays[1].index) return command;
  const stop = end + RELAYS_READY.length;
  const ports = relays.map(r => r[1]).join(' ');
  const first = `if ! ${join[0]} -I -S ${join[1]} ${filter} ${user} ${token} ${ports} </dev/null >/dev/null 2>&1; then\n`;
  return command.slice(0, start) + first + command.slice(start, stop) + 'fi\n' + command.slice(stop);
}

// srt's script inside the box starts its relays, waits for them to listen, then runs the
// command under its seccomp helper as a child and stays, a shell per box, only to pass the
// status on: `exec` puts the helper in its place (the status is the helper's, and the relays
// end with the box's PID namespace). Only where the script is exactly srt's, once.
const RELAYS_READY =
  'unset _srt_since _srt_now _srt_up _srt_counts _srt_kind _srt_skip _srt_inuse _srt_http _srt_socks\n';
function execLast(command) {
  const at = command.indexOf(RELAYS_READY);
  if (at < 0 || command.indexOf(RELAYS_READY, at + 1) >= 0) return command;
  const from = at + RELAYS_READY.length;
  const m = /^((?:[A-Z_][A-Z0-9_]*=[A-Za-z0-9_.@+\/-]* )*)\/[A-Za-z0-9_.@+\/-]*\/apply-seccomp /.exec(
    command.slice(from),
  );
  if (!m) return command;
  return command.slice(0, from) + m[1] + 'exec ' + command.slice(from + m[1].length);
}

const server = createServer(conn => {
  let buf = '';
  conn.setEncoding('utf8');
  conn.on('error', () => {});
  conn.on('data', chunk => {
    buf += chunk;
    const nl = buf.indexOf('\n');
    if (nl < 0) {
      if (buf.length > 4 << 20) conn.destroy();
      return;
    }
    last = Date.now();
    let req;
    try {
      req = JSON.parse(buf.slice(0, nl));
    } catch {
      conn.end(JSON.stringify({ error: 'not a JSON line' }) + '\n');
      return;
    }
    if (req && req.ping === true) {
      conn.end('{"pong": true}\n');
      return;
    }
    if (req && req.stop === true) {
      conn.end('{"stopped": true}\n', () => void finish(0));
      return;
    }
    // one wrap at a time: srt's wrap reads one configuration and one working directory
    inflight++;
    queue = queue.then(async () => {
      let out;
      try {
        out = await wrap(req ?? {});
      } catch (e) {
        out = { error: String(e?.message ?? e) };
      }
      last = Date.now();
      inflight--;
      conn.end(JSON.stringify(out) + '\n');
    });
  });
});

// Boxes need nothing of this host once wrapped (looop's filter serves them): it exits once no
// wrap came for IDLE_S, and a later wrap starts another.
setInterval(() => {
  // its home is gone (the data dir removed): no box of it can be started again
  if (!existsSync(cwd)) return void finish(0);
  // never while a wrap waits or runs (srt walks big trees for a while)
  if (inflight === 0 && Date.now() - last > idleMs) void finish(0);
}, 1000).unref();
process.once('SIGTERM', () => void finish(0));
process.once('SIGINT', () => void finish(0));

try {
  unlinkSync(sockPath);
} catch {}
server.listen(sockPath, () => {
  if (readyFd < 0) return;
  try {
    writeSync(readyFd, 'ok\n');
    closeSync(readyFd);
  } catch {}
});

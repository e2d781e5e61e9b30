// The sandbox host of one home (core/sbxhost.py starts it): srt's library loaded once, its
// filtering proxy and its one bridge shared by every sandboxed thing of the home, and the
// place each of them has its command wrapped in bubblewrap — then the host is done with it:
// no srt process stays beside a sandboxed worker.
//
// Each wrap registers the settings' allowedDomains as srt's per-command allow list under a
// fresh 128-bit id (srt puts it in the proxy URL's user name inside that sandbox only); the
// host's own list is empty, so a connection is let through only to the domains of the box
// it comes from.
//
//   node sbxhost.mjs LIB SOCKET CWD IDLE_S --ready-fd N
// LIB: srt's dist/index.js; SOCKET: where to serve (a private dir); CWD: the home's data dir,
// where srt would have started. Writes "ok" on fd N once it serves. Wire: one JSON line
// {"command", "settings"} -> {"command": wrapped} or {"error"}; {"stop": true} ends it.
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
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
process.title = 'looop-sbxhost';

const { SandboxManager, SandboxRuntimeConfigSchema } = await import(pathToFileURL(lib).href);
await SandboxManager.initialize({
  network: { allowedDomains: [], deniedDomains: [] },
  filesystem: { denyRead: [], allowWrite: [], denyWrite: [] },
});
const bridge = SandboxManager.getLinuxHttpSocketPath();
let last = Date.now();
let queue = Promise.resolve();

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
  const id = randomBytes(16).toString('base64url');
  SandboxManager.registerCommandNetworkLists(id, {
    allowedDomains: parsed.data.network.allowedDomains,
  });
  // how the id shows in the box's command line (srt's proxy user name: base64 of it)
  ids.set(id, { mark: Buffer.from(id).toString('base64').replace(/=+$/, ''), at: Date.now() });
  const command = await SandboxManager.wrapWithSandbox(req.command, undefined, parsed.data, undefined, {
    commandId: id,
  });
  return { command };
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
    queue = queue.then(async () => {
      let out;
      try {
        out = await wrap(req ?? {});
      } catch (e) {
        out = { error: String(e?.message ?? e) };
      }
      last = Date.now();
      conn.end(JSON.stringify(out) + '\n');
    });
  });
});

// In use while a process names the bridge (bubblewrap binds it, the box's relays connect to
// it): the kernel's process table says so, not a count that a killed worker would leave wrong.
// A box's id goes once no process carries it (after a grace for the caller to run the line):
// an id a box let out (its proxy URL printed into a shared report) ends with the box.
const ids = new Map();
const GRACE_MS = 60000;

function boxLines() {
  const out = [];
  for (const pid of readdirSync('/proc')) {
    if (pid.charCodeAt(0) > 57) continue;
    try {
      const line = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      // but the bridge itself, which listens there
      if (line.includes(bridge) && !line.includes(`UNIX-LISTEN:${bridge}`)) out.push(line);
    } catch {}
  }
  return out;
}

setInterval(() => {
  // srt's bridge gone (its socat died): every box lost its network; a new host starts anew
  if (!existsSync(bridge)) return void finish(1);
  // its home is gone (the data dir removed): no box of it can be started again
  if (!existsSync(cwd)) return void finish(0);
  const lines = boxLines();
  const now = Date.now();
  for (const [id, { mark, at }] of ids) {
    if (now - at > GRACE_MS && !lines.some(l => l.includes(mark))) {
      SandboxManager.unregisterCommandNetworkLists(id);
      ids.delete(id);
    }
  }
  if (now - last > idleMs && lines.length === 0) void finish(0);
}, 5000).unref();
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

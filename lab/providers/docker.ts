/**
 * The same clusters as containers, through testcontainers, for users with a Docker engine.
 *
 * Every container runs on **host networking** and listens on its own loopback address (127.0.0.x)
 * on the same port, exactly like the embedded provider: all traffic stays on loopback, the lab DNS
 * switch moves a name between addresses, and Toxiproxy sits in front as it does for local servers.
 * No bridge network, NAT or port mapping is needed, so an engine started with
 * `dockerd --bridge=none --iptables=false` is enough.
 *
 * Images: the official `postgres:<major>-bookworm` by default, or `spec.image` (a private registry's
 * mirror). `image: lab` (or CUTOVER_DOCKER_IMAGE=lab for every cluster) uses an image the lab
 * builds locally from Debian and the pinned embedded binaries (lab/docker-images.ts) — for machines
 * that reach no image registry, like this project's CI.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CutoverError } from '../../migration/errors.ts';
import { connect, serverVersionNum } from '../../migration/pg.ts';
import { dockerEngine } from '../tools.ts';
import { baseSettings } from './embedded.ts';
import { checkMajor } from '../binaries.ts';
import { ensureLabImage } from '../docker-images.ts';
import { freeLoopbackAddress, releaseLoopbackAddress, sleep } from '../net.ts';
import type { ClusterProvider, ClusterRecord, ClusterSpec, StartOptions, StartedCluster } from './types.ts';

const run = promisify(execFile);

export const DOCKER_IMAGES: Record<number, string> = {
  11: 'postgres:11-bookworm',
  12: 'postgres:12-bookworm',
  13: 'postgres:13-bookworm',
  14: 'postgres:14-bookworm',
  15: 'postgres:15-bookworm',
  16: 'postgres:16-bookworm',
  17: 'postgres:17-bookworm',
  18: 'postgres:18-bookworm',
};

/** The image a cluster runs: the spec's, the lab-built one (`lab`), or the official one. */
export async function resolveImage(spec: ClusterSpec, log?: (s: string) => void): Promise<string> {
  const wanted = spec.image ?? process.env.CUTOVER_DOCKER_IMAGE;
  if (wanted === 'lab') return ensureLabImage(spec.major, { log });
  return wanted ?? DOCKER_IMAGES[checkMajor(spec.major)]!;
}

async function dockerCli(args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 32 << 20 });
  return stdout;
}

/** The server's output, from the container runtime (the container's stdout/stderr is its log). */
async function containerLog(id: string): Promise<string> {
  try {
    const { stdout, stderr } = await run('docker', ['logs', id], { maxBuffer: 64 << 20 });
    return stdout + stderr;
  } catch (e: any) {
    return `(docker logs ${id} failed: ${e?.message ?? e})\n`;
  }
}

async function waitForConnections(r: ClusterRecord, timeoutMs: number, id: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const c = await connect(r.url, { connectTimeoutMs: 2000, role: `cluster "${r.name}"` });
      r.versionNum = await serverVersionNum(c);
      await c.end();
      return;
    } catch {
      const running = (await dockerCli(['inspect', '--format', '{{.State.Running}}', id]).catch(() => 'false')).trim() === 'true';
      if (!running) {
        const tail = (await containerLog(id)).split('\n').slice(-15).join('\n');
        if (/Address already in use|could not create any TCP\/IP sockets/.test(tail))
          throw new CutoverError('PORT_IN_USE', `cluster "${r.name}" could not listen on ${r.host}:${r.port}: address already in use`, { detail: tail, hint: 'another server holds that address and port; pick another port or stop it' });
        throw new CutoverError('POSTMASTER_DIED', `the container of cluster "${r.name}" (PostgreSQL ${r.major}) exited during start: ${tail.split('\n').filter(Boolean).slice(-2).join(' / ')}`, { detail: tail, hint: `see \`docker logs ${id.slice(0, 12)}\`` });
      }
      if (Date.now() > deadline) {
        const tail = (await containerLog(id)).split('\n').slice(-15).join('\n');
        throw new CutoverError('TIMEOUT', `container of cluster "${r.name}" did not accept connections on ${r.host}:${r.port} within ${timeoutMs} ms`, {
          detail: tail,
          hint: `see \`docker logs ${id.slice(0, 12)}\``,
        });
      }
      await sleep(100);
    }
  }
}

class DockerCluster implements StartedCluster {
  constructor(
    public record: ClusterRecord,
    private readonly logDir?: string,
  ) {}
  get url() {
    return this.record.url;
  }
  get major() {
    return this.record.major;
  }
  private get id() {
    return this.record.containerId!;
  }
  async alive() {
    try {
      return (await dockerCli(['inspect', '--format', '{{.State.Running}}', this.id])).trim() === 'true';
    } catch {
      return false;
    }
  }
  async collectLog() {
    await this.saveLog();
  }
  /** Keep the server's log with the run (the lab copies record.logFile into the run folder). */
  private async saveLog() {
    if (!this.logDir || !this.record.logFile) return;
    mkdirSync(this.logDir, { recursive: true });
    writeFileSync(this.record.logFile, await containerLog(this.id));
  }
  async stop() {
    await dockerCli(['stop', '--time', '30', this.id]).catch(() => {});
    await this.saveLog();
  }
  async destroy() {
    await this.saveLog().catch(() => {});
    await dockerCli(['rm', '--force', '--volumes', this.id]).catch(() => {});
    releaseLoopbackAddress(this.record.host);
  }
  /** SIGKILL through the container runtime: PID 1 of a container ignores a kill -9 from inside it. */
  async kill() {
    await dockerCli(['kill', '--signal', 'KILL', this.id]);
  }
  async restart() {
    await dockerCli(['start', this.id]);
    await waitForConnections(this.record, 60_000, this.id);
  }
  async [Symbol.asyncDispose]() {
    await this.destroy();
  }
}

export class DockerProvider implements ClusterProvider {
  readonly kind = 'docker' as const;
  async start(spec: ClusterSpec, opts?: StartOptions): Promise<StartedCluster> {
    const engine = await dockerEngine();
    if (!engine.available)
      throw new CutoverError('TOOL_MISSING', `the docker provider needs a Docker engine: ${engine.reason}`, {
        hint: 'start Docker (on Debian as root: `apt-get install docker.io && dockerd --bridge=none --iptables=false &`), or use the embedded provider (the default)',
      });
    if (opts?.fromDataDir) throw new CutoverError('USAGE', 'the docker provider cannot start from a copied data directory (golden clone)', { hint: 'seed the container instead' });
    const major = checkMajor(spec.major);
    const image = await resolveImage(spec, opts?.log);
    // Containers under testcontainers' reaper need its image (testcontainers/ryuk) from a registry;
    // the provider removes its own containers (destroy, lab down), so the reaper is not needed.
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
    // Host networking: the container's address is ours. Without this, testcontainers running inside
    // a container looks for the `bridge` network's gateway, which an engine without a bridge lacks.
    process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
    const password = spec.password ?? randomBytes(12).toString('hex');
    const database = spec.database ?? 'app';
    const user = spec.user ?? 'postgres';
    const port = spec.port ?? 5432;
    // Another process may take the address between our bind check and the server's own bind:
    // retry on the next free address (unless the spec named one).
    const avoid: string[] = [];
    for (let attempt = 1; ; attempt++) {
      const host = spec.host ?? (await freeLoopbackAddress(port, 2, avoid));
      try {
        return await this.startAt(spec, { image, major, password, database, user, port, host }, opts);
      } catch (e: any) {
        if (e?.code !== 'PORT_IN_USE' || spec.host || attempt >= 5) throw e;
        avoid.push(host);
      }
    }
  }

  private async startAt(
    spec: ClusterSpec,
    c: { image: string; major: number; password: string; database: string; user: string; port: number; host: string },
    opts?: StartOptions,
  ): Promise<StartedCluster> {
    const { image, major, password, database, user, port, host } = c;
    const { GenericContainer } = await import('testcontainers');
    const settings = { ...baseSettings(spec), listen_addresses: host, port, unix_socket_directories: '/var/run/postgresql' };
    const cmd = ['postgres', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`])];
    const initdbArgs = [`--encoding=${spec.encoding ?? 'UTF8'}`, `--locale=${spec.locale ?? 'C.UTF-8'}`];
    if (spec.localeProvider === 'icu') initdbArgs.push('--locale-provider=icu', `--icu-locale=${spec.icuLocale ?? 'und'}`);
    if (spec.localeProvider === 'builtin') initdbArgs.push('--locale-provider=builtin', `--builtin-locale=${spec.icuLocale ?? 'C.UTF-8'}`);
    if (spec.dataChecksums) initdbArgs.push('--data-checksums');
    let container;
    try {
      container = await new GenericContainer(image)
        .withNetworkMode('host')
        .withEnvironment({ POSTGRES_PASSWORD: password, POSTGRES_USER: user, POSTGRES_DB: database, POSTGRES_INITDB_ARGS: initdbArgs.join(' '), TZ: spec.timezone ?? 'UTC' })
        .withCommand(cmd)
        .withLabels({ 'cutover-lab.cluster': spec.name })
        // No exposed ports on host networking, and the lab logs at `warning` (no "ready" line to wait
        // for): readiness is a real connection, polled below, as for embedded servers.
        .start();
    } catch (e: any) {
      releaseLoopbackAddress(host);
      throw new CutoverError('POSTMASTER_DIED', `container for cluster "${spec.name}" (${image}) did not start: ${String(e?.message ?? e).split('\n')[0]}`, {
        hint: /No such image|pull access denied|manifest unknown|connect/i.test(String(e?.message)) ? `the image ${image} is not available locally and cannot be pulled; set the cluster's image, or image: lab to build one locally` : 'see the container log (docker logs)',
      });
    }
    const id = container.getId();
    const logDir = opts?.dir;
    const record: ClusterRecord = {
      provider: 'docker',
      name: spec.name,
      major,
      url: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`,
      host,
      port,
      database,
      user,
      containerId: id,
      logFile: logDir ? join(logDir, 'server.log') : undefined,
      spec: { ...spec, password: undefined, image },
    };
    const cluster = new DockerCluster(record, logDir);
    try {
      await waitForConnections(record, 60_000, id);
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return cluster;
  }
  attach(record: ClusterRecord): StartedCluster {
    return new DockerCluster(record);
  }
}

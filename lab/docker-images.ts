/**
 * Local Postgres images for the docker provider, for machines that reach no image registry.
 *
 * The docker provider defaults to the official `postgres:<major>-bookworm` images. Where those
 * cannot be pulled (an air-gapped CI runner, this project's own test machines), the lab builds an
 * image per major that keeps the official image's contract (POSTGRES_PASSWORD, POSTGRES_DB,
 * POSTGRES_INITDB_ARGS, TZ, `postgres -c …` as the command, data in /var/lib/postgresql/data,
 * the server running as an unprivileged `postgres` user) from parts that come from registries the
 * machine does reach:
 *
 *   - a minimal Debian root filesystem made by `debootstrap --variant=minbase` from Debian's own
 *     mirror (cached as a tarball under <lab home>/docker/),
 *   - the same embedded Postgres binaries the embedded provider runs (lab/binaries.ts, pinned and
 *     verified per major),
 *   - a small entrypoint (below),
 *
 * imported with `docker import` (no build daemon features, no base image pull). Images are tagged
 * by the exact binary version, so a new pin builds a new image and an old one is reused as is.
 *
 * For docker-compose.yml the other services get local images the same way (`toolImage`): the
 * machine's own toxiproxy-server and k6 (.tools/bin), pgbouncer and node, each with the shared
 * libraries the base lacks, at the paths and entrypoints of the public images the compose file
 * defaults to. They are tagged by a hash of everything copied in, so they are built once per
 * binary and only when asked:
 *   node bin/run-ts.mjs lab/docker-images.ts --compose [--old 13 --new 17] > compose.env
 * prints the CUTOVER_*_IMAGE variables for `docker-compose --env-file compose.env up -d`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, writeFileSync, chmodSync, rmSync, renameSync, cpSync, appendFileSync, readFileSync, realpathSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { labHome } from './paths.ts';
import { ensureBinaries, checkMajor, PINNED_VERSIONS } from './binaries.ts';
import { CutoverError } from '../migration/errors.ts';
import { requireTool } from './tools.ts';

const run = promisify(execFile);

/** The image tag the lab builds for a major (version-pinned, so a new pin means a new image). */
export function labImageTag(major: number): string {
  const m = checkMajor(major);
  return `cutover-lab/postgres:${PINNED_VERSIONS[m]}`;
}

/** Same contract as the official image's docker-entrypoint.sh, for what the lab uses of it. */
const ENTRYPOINT = `#!/bin/sh
# cutover-lab postgres entrypoint: the official image's contract, for what the lab uses of it.
set -eu
PGBIN=/opt/pg/bin
export PATH="$PGBIN:$PATH" LD_LIBRARY_PATH=/opt/pg/lib
PGDATA="\${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
if [ "\${1:-}" = "postgres" ]; then shift; fi
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "\${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  pw=$(mktemp); printf '%s\\n' "$POSTGRES_PASSWORD" > "$pw"; chown postgres "$pw"
  # shellcheck disable=SC2086
  as_pg initdb -D "$PGDATA" -U "\${POSTGRES_USER:-postgres}" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 \${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pw"
  printf 'local all all trust\\nhost all all 0.0.0.0/0 scram-sha-256\\nhost replication all 0.0.0.0/0 scram-sha-256\\nhost all all ::/0 scram-sha-256\\n' > "$PGDATA/pg_hba.conf"
  db="\${POSTGRES_DB:-postgres}"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \\"$db\\";" | as_pg postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "cutover-lab entrypoint: initialised $PGDATA"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
`;

export interface DockerCli {
  /** Environment for the docker CLI (DOCKER_HOST). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

async function docker(args: string[], cli: DockerCli): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('docker', args, { env: cli.env ?? process.env, maxBuffer: 16 << 20 });
  } catch (e: any) {
    if (e?.code === 'ENOENT') throw new CutoverError('TOOL_MISSING', 'the docker CLI is not installed', { hint: 'apt-get install docker.io (Debian), or install Docker' });
    throw e;
  }
}

export async function imageExists(tag: string, cli: DockerCli = {}): Promise<boolean> {
  try {
    await docker(['image', 'inspect', '--format', '{{.Id}}', tag], cli);
    return true;
  } catch {
    return false;
  }
}

/** A minimal Debian bookworm root filesystem as a tarball, made once with debootstrap. */
export async function ensureRootfsTarball(cli: DockerCli = {}): Promise<string> {
  const dir = join(labHome(), 'docker');
  const tarball = join(dir, 'debian-bookworm-minbase.tar');
  if (existsSync(tarball)) return tarball;
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() !== 0) {
    throw new CutoverError('PRIVILEGE', 'building the lab image needs root (debootstrap)', { exitCode: 2,
      hint: `run the test setup as root once, or pull the official images (postgres:<major>-bookworm) and set the scenario's image`,
    });
  }
  const tmp = join(dir, `rootfs.${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  cli.log?.('building a minimal Debian bookworm root filesystem (debootstrap, once)…');
  const mirror = process.env.CUTOVER_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  try {
    await run('debootstrap', ['--variant=minbase', 'bookworm', tmp, mirror], { maxBuffer: 64 << 20 });
  } catch (e: any) {
    rmSync(tmp, { recursive: true, force: true });
    if (e?.code === 'ENOENT') throw new CutoverError('TOOL_MISSING', 'debootstrap is not installed', { hint: 'apt-get install debootstrap' });
    throw new CutoverError('INTERNAL', `debootstrap bookworm from ${mirror} failed: ${String(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' / ')}`, {
      hint: 'check access to the Debian mirror (CUTOVER_DEBIAN_MIRROR), then rerun',
    });
  }
  // Trim what a server image never needs: apt lists, docs, man pages, the package cache.
  for (const p of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale']) rmSync(join(tmp, p), { recursive: true, force: true });
  await run('tar', ['-C', tmp, '-cf', `${tarball}.part`, '.'], { maxBuffer: 16 << 20 });
  renameSync(`${tarball}.part`, tarball);
  rmSync(tmp, { recursive: true, force: true });
  return tarball;
}

/**
 * Make sure the lab's image for `major` exists in the engine: base root filesystem + the pinned
 * embedded binaries + the entrypoint, imported with `docker import`. Returns the tag.
 */
export async function ensureLabImage(major: number, cli: DockerCli = {}): Promise<string> {
  const tag = labImageTag(major);
  if (await imageExists(tag, cli)) return tag;
  const bins = await ensureBinaries(major, cli.log);
  cli.log?.(`building image ${tag} (debian minbase + PostgreSQL ${bins.version} binaries)…`);
  const changes = ['ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]', 'CMD ["postgres"]', 'ENV PGDATA=/var/lib/postgresql/data', 'ENV PATH=/opt/pg/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  // (`docker import` accepts no STOPSIGNAL; `docker stop` sends SIGTERM = Postgres's smart shutdown,
  // and the provider stops with a timeout, then the runtime's SIGKILL.)
  await importStaged(tag, changes, cli, (stage) => {
    cpSync(bins.root, join(stage, 'opt/pg'), { recursive: true, dereference: false, verbatimSymlinks: true });
    // The official image's user (uid/gid 999), so volumes and file modes look the same.
    addUser(stage, 'postgres', 999, '/var/lib/postgresql');
    mkdirSync(join(stage, 'var/lib/postgresql'), { recursive: true });
    const ep = join(stage, 'usr/local/bin/docker-entrypoint.sh');
    writeFileSync(ep, ENTRYPOINT);
    chmodSync(ep, 0o755);
  });
  return tag;
}

function addUser(stage: string, name: string, id: number, home: string): void {
  appendFileSync(join(stage, 'etc/passwd'), `${name}:x:${id}:${id}:${name}:${home}:/bin/sh\n`);
  appendFileSync(join(stage, 'etc/group'), `${name}:x:${id}:\n`);
}

/** Unpack the base root filesystem, let `populate` add to it, and `docker import` it as `tag`. */
async function importStaged(tag: string, changes: string[], cli: DockerCli, populate: (stage: string) => void): Promise<void> {
  const base = await ensureRootfsTarball(cli);
  const stage = join(labHome(), 'docker', `stage-${tag.replace(/[^A-Za-z0-9.-]/g, '_')}.${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  try {
    await run('tar', ['-C', stage, '-xf', base], { maxBuffer: 16 << 20 });
    populate(stage);
    // One shell pipeline: tar streams the staged tree straight into `docker import` (no 300 MB temp file).
    const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const pipeline = `tar -C ${q(stage)} -c . | docker import ${changes.map((c) => `--change ${q(c)}`).join(' ')} - ${q(tag)}`;
    try {
      await run('bash', ['-o', 'pipefail', '-c', pipeline], { env: cli.env ?? process.env, maxBuffer: 16 << 20 });
    } catch (e: any) {
      throw new CutoverError('INTERNAL', `docker import of ${tag} failed: ${String(e.stderr ?? e.message).trim()}`, { hint: 'is the Docker engine running and writable?' });
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Images for docker-compose.yml's other services, from this machine's own binaries.

export type ToolImageName = 'toxiproxy' | 'k6' | 'pgbouncer' | 'node';

/** Where each binary goes and how the image starts, as in the public image the compose file defaults to. */
const TOOL_IMAGES: Record<ToolImageName, { binary: () => string; to: string; changes: string[]; user?: [string, number] }> = {
  // ghcr.io/shopify/toxiproxy: the server at /toxiproxy is the entrypoint.
  toxiproxy: { binary: () => requireTool('toxiproxy-server'), to: '/toxiproxy', changes: ['ENTRYPOINT ["/toxiproxy"]'] },
  // grafana/k6: `k6` is the entrypoint, an unprivileged user runs it.
  k6: { binary: () => requireTool('k6'), to: '/usr/bin/k6', changes: ['ENTRYPOINT ["k6"]', 'USER 12345', 'WORKDIR /tmp'], user: ['k6', 12345] },
  // The compose file starts it as `pgbouncer <ini>` with user 999 (pgbouncer refuses root).
  pgbouncer: { binary: () => requireTool('pgbouncer'), to: '/usr/sbin/pgbouncer', changes: [], user: ['pgbouncer', 999] },
  // node:20-bookworm-slim: `node` on PATH; the compose file mounts the checkout and runs it.
  node: { binary: () => process.execPath, to: '/usr/local/bin/node', changes: [] },
};

/** The shared libraries a binary links (`ldd`), resolved to real files. */
async function sharedLibraries(bin: string): Promise<string[]> {
  const { stdout } = await run('ldd', [bin]).catch((e: any) => ({ stdout: String(e?.stdout ?? '') }));
  return [...stdout.matchAll(/=>\s*(\/\S+)/g)].map((m) => m[1]!);
}

/**
 * A local image for one of the compose file's non-Postgres services: the base root filesystem plus
 * this machine's binary and whichever of its shared libraries the base lacks (copied to the same
 * paths). Tagged by a hash of the binary, those libraries and the image settings.
 */
export async function toolImage(name: ToolImageName, cli: DockerCli = {}): Promise<string> {
  const t = TOOL_IMAGES[name];
  const bin = realpathSync(t.binary());
  const base = await ensureRootfsTarball(cli);
  const baseFiles = new Set((await run('tar', ['-tf', base], { maxBuffer: 64 << 20 })).stdout.split('\n').map((f) => f.replace(/^\.\//, '/')));
  const libs = (await sharedLibraries(bin)).filter((l) => !baseFiles.has(l) && !baseFiles.has(l.replace(/^\/lib\//, '/usr/lib/')));
  const h = createHash('sha256').update(JSON.stringify({ to: t.to, changes: t.changes, user: t.user, libs }));
  for (const f of [bin, ...libs]) h.update(readFileSync(f));
  const tag = `cutover-lab/${name}:${h.digest('hex').slice(0, 16)}`;
  if (await imageExists(tag, cli)) return tag;
  cli.log?.(`building image ${tag} (debian minbase + ${bin}${libs.length ? ` + ${libs.length} libraries` : ''})…`);
  await importStaged(tag, [...t.changes, 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cli, (stage) => {
    for (const [from, to] of [[bin, t.to], ...libs.map((l) => [l, l])] as const) {
      // the base keeps /lib as a symlink to usr/lib: write through it, never over it
      const dest = join(stage, to.replace(/^\/lib\//, '/usr/lib/'));
      mkdirSync(dirname(dest), { recursive: true });
      cpSync(from, dest, { dereference: true });
    }
    if (t.user) addUser(stage, t.user[0], t.user[1], '/tmp');
  });
  return tag;
}

/**
 * Every image docker-compose.yml names, built locally: the variables to substitute them
 * (CUTOVER_OLD_IMAGE, CUTOVER_NEW_IMAGE, CUTOVER_TOXIPROXY_IMAGE, …). Sequential: they share the base.
 */
export async function composeImages(majors: { old: number; new: number } = { old: 13, new: 17 }, cli: DockerCli = {}): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  env.CUTOVER_OLD_IMAGE = await ensureLabImage(majors.old, cli);
  env.CUTOVER_NEW_IMAGE = await ensureLabImage(majors.new, cli);
  for (const name of Object.keys(TOOL_IMAGES) as ToolImageName[]) env[`CUTOVER_${name.toUpperCase()}_IMAGE`] = await toolImage(name, cli);
  return env;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { compose: { type: 'boolean' }, old: { type: 'string', default: '13' }, new: { type: 'string', default: '17' } }, strict: true });
  if (!values.compose) {
    process.stderr.write('usage: node bin/run-ts.mjs lab/docker-images.ts --compose [--old 13 --new 17]   (prints CUTOVER_*_IMAGE=… lines)\n');
    process.exit(2);
  }
  try {
    const env = await composeImages({ old: Number(values.old), new: Number(values.new) }, { log: (l) => process.stderr.write(l + '\n') });
    for (const [k, v] of Object.entries(env)) process.stdout.write(`${k}=${v}\n`);
  } catch (e: any) {
    process.stderr.write(`${e.message}${e.hint ? `\n  fix: ${e.hint}` : ''}\n`);
    process.exit(e.exitCode ?? 1);
  }
}

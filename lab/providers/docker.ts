/**
 * The same clusters as containers, through testcontainers, for users with a Docker engine.
 * Images are the official `postgres:<major>-bookworm` ones, pinned here in one place.
 */
import { randomBytes } from 'node:crypto';
import { CutoverError } from '../../migration/errors.ts';
import { dockerEngine } from '../tools.ts';
import { baseSettings } from './embedded.ts';
import { checkMajor } from '../binaries.ts';
import type { ClusterProvider, ClusterRecord, ClusterSpec, StartOptions, StartedCluster } from './types.ts';

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

class DockerCluster implements StartedCluster {
  constructor(
    public record: ClusterRecord,
    private container: any,
  ) {}
  get url() {
    return this.record.url;
  }
  get major() {
    return this.record.major;
  }
  async alive() {
    try {
      const { exitCode } = await this.container.exec(['pg_isready']);
      return exitCode === 0;
    } catch {
      return false;
    }
  }
  async stop() {
    await this.container?.stop({ remove: false });
  }
  async destroy() {
    await this.container?.stop({ remove: true });
  }
  async kill() {
    await this.container.exec(['bash', '-c', 'kill -9 1']).catch(() => {});
  }
  async [Symbol.asyncDispose]() {
    await this.destroy();
  }
}

export class DockerProvider implements ClusterProvider {
  readonly kind = 'docker' as const;
  async start(spec: ClusterSpec, _opts?: StartOptions): Promise<StartedCluster> {
    const engine = await dockerEngine();
    if (!engine.available) throw new CutoverError('TOOL_MISSING', `the docker provider needs a Docker engine: ${engine.reason}`, { hint: 'start Docker, or use the embedded provider (the default)' });
    const major = checkMajor(spec.major);
    const { GenericContainer, Wait } = await import('testcontainers');
    const password = spec.password ?? randomBytes(12).toString('hex');
    const database = spec.database ?? 'app';
    const settings = { ...baseSettings(spec), unix_socket_directories: '/var/run/postgresql' };
    const cmd = ['postgres', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : v}`])];
    const initdbArgs = [`--encoding=${spec.encoding ?? 'UTF8'}`, `--locale=${spec.locale ?? 'C.UTF-8'}`];
    if (spec.localeProvider === 'icu') initdbArgs.push('--locale-provider=icu', `--icu-locale=${spec.icuLocale ?? 'und'}`);
    const container = await new GenericContainer(DOCKER_IMAGES[major])
      .withEnvironment({ POSTGRES_PASSWORD: password, POSTGRES_DB: database, POSTGRES_INITDB_ARGS: initdbArgs.join(' '), TZ: spec.timezone ?? 'UTC' })
      .withCommand(cmd)
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const host = container.getHost();
    const port = container.getMappedPort(5432);
    const url = `postgres://postgres:${password}@${host}:${port}/${database}`;
    return new DockerCluster({ provider: 'docker', name: spec.name, major, url, host, port, database, user: 'postgres', containerId: container.getId(), spec: { ...spec, password: undefined } }, container);
  }
  attach(record: ClusterRecord): StartedCluster {
    const stopById = async () => {
      const { getContainerRuntimeClient } = await import('testcontainers');
      const client = await getContainerRuntimeClient();
      const c = client.container.getById(record.containerId!);
      await client.container.stop(c).catch(() => {});
      await client.container.remove(c).catch(() => {});
    };
    return new DockerCluster(record, { stop: stopById, exec: async () => ({ exitCode: 1 }) });
  }
}

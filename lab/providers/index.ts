import type { ClusterProvider, ProviderKind } from './types.ts';
import { EmbeddedProvider } from './embedded.ts';
import { DockerProvider } from './docker.ts';
import { ExternalProvider } from './external.ts';
import { CutoverError } from '../../migration/errors.ts';

export * from './types.ts';

export function provider(kind: ProviderKind | string = 'embedded'): ClusterProvider {
  switch (kind) {
    case 'embedded':
      return new EmbeddedProvider();
    case 'docker':
      return new DockerProvider();
    case 'external':
      return new ExternalProvider();
    default:
      throw new CutoverError('USAGE', `unknown cluster provider "${kind}"`, { hint: 'use embedded (default), docker or external' });
  }
}

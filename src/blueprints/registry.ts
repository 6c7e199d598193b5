import type { BlueprintImplementation } from './implementation.js';
import { external } from './external.js';
import { hostPool } from './host-pool.js';
import { workingCopy } from './working-copy.js';

/** The implementations a process knows. Adding one is its own file plus one line in builtInImplementations. */
export class BlueprintRegistry {
  private readonly byKey = new Map<string, BlueprintImplementation>();

  constructor(implementations: readonly BlueprintImplementation[] = []) {
    for (const implementation of implementations) this.register(implementation);
  }

  register(implementation: BlueprintImplementation): this {
    if (this.byKey.has(implementation.key))
      throw new Error(`blueprint implementation "${implementation.key}" is registered twice`);
    this.byKey.set(implementation.key, implementation);
    return this;
  }

  get(key: string): BlueprintImplementation | undefined {
    return this.byKey.get(key);
  }

  list(): BlueprintImplementation[] {
    return [...this.byKey.values()];
  }
}

export const builtInImplementations: readonly BlueprintImplementation[] = [hostPool, workingCopy, external];

/** The built-ins plus any extra ones (tests add theirs this way). */
export function createRegistry(extra: readonly BlueprintImplementation[] = []): BlueprintRegistry {
  return new BlueprintRegistry([...builtInImplementations, ...extra]);
}

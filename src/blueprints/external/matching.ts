// When a box satisfies a lease. A lease names what it needs, not what it wants exactly: a number
// is a minimum (a lease asking for 4 cpus is happy on 8), strings and booleans must be equal, and
// a box that does not report an attribute does not satisfy a lease that asks for it.

/** The first attribute the box falls short on, in words; null when it satisfies every one. */
export function shortfall(box: Record<string, unknown>, wanted: Record<string, unknown>): string | null {
  for (const [key, value] of Object.entries(wanted)) {
    const actual = box[key];
    if (typeof value === 'number') {
      if (typeof actual !== 'number') return `${key} is ${describe(actual)}, not a number of at least ${value}`;
      if (actual < value) return `${key} is ${actual}, less than ${value}`;
    } else if (actual !== value) {
      return `${key} is ${describe(actual)}, not ${JSON.stringify(value)}`;
    }
  }
  return null;
}

export const satisfies = (box: Record<string, unknown>, wanted: Record<string, unknown>) =>
  shortfall(box, wanted) === null;

const describe = (value: unknown) => (value === undefined ? 'not reported' : JSON.stringify(value));

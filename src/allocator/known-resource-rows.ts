/**
 * The resource rows this process has read in views of the pool (allocation-view.ts), by row
 * version, so that a view sends again only the rows that changed since: a pass reads the same
 * least-loaded resources over and over, and turning each into JSON was most of what PostgreSQL
 * spent on the view, and parsing it a share of this process's pass.
 *
 * A version is the table's file, the row version's xmin and its ctid. Within one file of the
 * table, one (xmin, ctid) is one content: a transaction that writes a row twice puts each version
 * at its own ctid, and a ctid is freed for reuse only once no transaction can see what was there,
 * by then written by another transaction. What rewrites the table (VACUUM FULL, CLUSTER) gives it
 * a new file, so a version from before never matches one after.
 */
export class KnownResourceRows {
  private readonly byType = new Map<string, Map<number, KnownRow>>();

  /** What a view of `resourceType` tells PostgreSQL this process knows: ids and their versions. */
  offer(resourceType: string): KnownOffer {
    const rows = this.byType.get(resourceType);
    if (!rows) return NOTHING_KNOWN;
    return { ids: [...rows.keys()], versions: [...rows.values()].map((r) => r.version) };
  }

  /**
   * The view's rows whole: a row left out as known comes from here. Null when one left out is no
   * longer here (another view of the type, answered in between, replaced it): read without an offer.
   * Keeps the rows listed, and only those once more are kept than a view lists.
   */
  fill(resourceType: string, listed: readonly ListedResource[], keep: number): ViewRow[] | null {
    let rows = this.byType.get(resourceType);
    if (!rows) {
      rows = new Map();
      this.byType.set(resourceType, rows);
    }
    const filled: ViewRow[] = [];
    for (const { id, version, row, live } of listed) {
      if (row !== null) {
        rows.set(id, { version, row });
        filled.push({ row, live });
        continue;
      }
      const known = rows.get(id);
      if (known?.version !== version) return null;
      filled.push({ row: known.row, live });
    }
    if (rows.size > keep) {
      const ids = new Set(listed.map((r) => r.id));
      for (const id of rows.keys()) if (!ids.has(id)) rows.delete(id);
    }
    return filled;
  }
}

/** The ids and versions a view is told are known (see offer). */
export interface KnownOffer {
  ids: readonly number[];
  versions: readonly string[];
}

export const NOTHING_KNOWN: KnownOffer = { ids: [], versions: [] };

interface KnownRow {
  version: string;
  row: Record<string, unknown>;
}

/** A resource as a view lists it: its row only when the offer did not name that version. */
export interface ListedResource {
  id: number;
  version: string;
  row: Record<string, unknown> | null;
  live: number;
}

export interface ViewRow {
  row: Record<string, unknown>;
  live: number;
}

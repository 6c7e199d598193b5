-- Resource."leaseCount" kept by the database: every statement that moves leases onto or off a
-- resource (a grant, a batched release, a resource's teardown) adjusts the counts of the
-- resources it touched, whichever code wrote it. The allocation view then reads a large pool's
-- least-loaded resources as an index range instead of counting the leases of every resource.
--
-- Statement-level triggers with transition tables: one update per resource per statement, and
-- the resource rows locked in id order, so that two statements moving leases on the same
-- resources wait on each other instead of deadlocking.
--
-- Migrations reach PostgreSQL through a driver adapter that splits the script at every
-- semicolon, quoted or not: the trigger function's body is an escape string whose semicolons are
-- written \073.

CREATE FUNCTION "drydock_apply_lease_count"(ids int[], deltas int[]) RETURNS void LANGUAGE sql AS $$
  WITH d AS (
    SELECT id, sum(delta)::int AS delta FROM unnest(ids, deltas) AS m(id, delta)
    WHERE id IS NOT NULL GROUP BY id HAVING sum(delta) <> 0),
  locked AS (SELECT r.id FROM "Resource" r WHERE r.id IN (SELECT id FROM d) ORDER BY r.id FOR NO KEY UPDATE)
  UPDATE "Resource" r SET "leaseCount" = r."leaseCount" + d.delta
  FROM d WHERE r.id = d.id AND r.id IN (SELECT id FROM locked)
$$;

-- Each branch names only the transition tables its event has. Of an update, only the rows whose
-- status or resource changed count (most updates, of blockers and heartbeats, move nothing).
CREATE FUNCTION "drydock_lease_count_trigger"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP = ''INSERT'' THEN
    PERFORM "drydock_apply_lease_count"(array_agg("resourceId"), array_agg(1))
    FROM new_rows WHERE "resourceId" IS NOT NULL AND status IN (''ACQUIRED'', ''ACTIVE'')
    HAVING count(*) > 0\073
  ELSIF TG_OP = ''DELETE'' THEN
    PERFORM "drydock_apply_lease_count"(array_agg("resourceId"), array_agg(-1))
    FROM old_rows WHERE "resourceId" IS NOT NULL AND status IN (''ACQUIRED'', ''ACTIVE'')
    HAVING count(*) > 0\073
  ELSE
    PERFORM "drydock_apply_lease_count"(array_agg(m.id), array_agg(m.delta))
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES
      (CASE WHEN n.status IN (''ACQUIRED'', ''ACTIVE'') THEN n."resourceId" END, 1),
      (CASE WHEN o.status IN (''ACQUIRED'', ''ACTIVE'') THEN o."resourceId" END, -1)) AS m(id, delta)
    WHERE (n.status, n."resourceId") IS DISTINCT FROM (o.status, o."resourceId") AND m.id IS NOT NULL
    HAVING count(*) > 0\073
  END IF\073
  RETURN NULL\073
END';

CREATE TRIGGER "Lease_leaseCount_insert" AFTER INSERT ON "Lease"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "drydock_lease_count_trigger"();
CREATE TRIGGER "Lease_leaseCount_update" AFTER UPDATE ON "Lease"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "drydock_lease_count_trigger"();
CREATE TRIGGER "Lease_leaseCount_delete" AFTER DELETE ON "Lease"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "drydock_lease_count_trigger"();

-- The counts of the leases that are already there.
UPDATE "Resource" r SET "leaseCount" = (
  SELECT count(*) FROM "Lease" l WHERE l."resourceId" = r.id AND l.status IN ('ACQUIRED', 'ACTIVE'));

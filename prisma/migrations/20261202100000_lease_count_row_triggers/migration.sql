-- Resource."leaseCount" stays kept by the database (see 20261201000000_resource_lease_count), now
-- by row-level triggers whose WHEN clause lets through only a lease that moves onto or off a
-- resource. The statement-level triggers fired on every statement that touched a lease (a request's
-- insert, a blocker, a heartbeat) and each firing ran a PL/pgSQL function over transition tables
-- and a SQL function planned anew on every call: many times the cost of the lease update itself,
-- on every grant and every release. A WHEN clause is evaluated without calling the function, so
-- the other updates cost nothing here.
--
-- Lock order: the one statement that moves several leases at once (a scheduling pass's grants)
-- locks their resources in id order itself (it raises their fence counters first), so the
-- count's update of a resource it moved a lease onto finds the row already locked by its own
-- transaction. Every other statement that moves a lease moves one.
--
-- Migrations reach PostgreSQL through a driver adapter that splits the script at every
-- semicolon, quoted or not: the trigger function's body is an escape string whose semicolons are
-- written \073.

DROP TRIGGER "Lease_leaseCount_insert" ON "Lease";
DROP TRIGGER "Lease_leaseCount_update" ON "Lease";
DROP TRIGGER "Lease_leaseCount_delete" ON "Lease";
DROP FUNCTION "drydock_lease_count_trigger"();
DROP FUNCTION "drydock_apply_lease_count"(int[], int[]);

CREATE FUNCTION "drydock_lease_count_row"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP <> ''INSERT'' AND OLD."resourceId" IS NOT NULL AND OLD.status IN (''ACQUIRED'', ''ACTIVE'') THEN
    UPDATE "Resource" SET "leaseCount" = "leaseCount" - 1 WHERE id = OLD."resourceId"\073
  END IF\073
  IF TG_OP <> ''DELETE'' AND NEW."resourceId" IS NOT NULL AND NEW.status IN (''ACQUIRED'', ''ACTIVE'') THEN
    UPDATE "Resource" SET "leaseCount" = "leaseCount" + 1 WHERE id = NEW."resourceId"\073
  END IF\073
  RETURN NULL\073
END';

CREATE TRIGGER "Lease_leaseCount_insert" AFTER INSERT ON "Lease" FOR EACH ROW
  WHEN (NEW."resourceId" IS NOT NULL AND NEW.status IN ('ACQUIRED', 'ACTIVE'))
  EXECUTE FUNCTION "drydock_lease_count_row"();
-- ACQUIRED → ACTIVE on the same resource counts the same: only a change of what counts fires.
CREATE TRIGGER "Lease_leaseCount_update" AFTER UPDATE OF status, "resourceId" ON "Lease" FOR EACH ROW
  WHEN ((CASE WHEN OLD.status IN ('ACQUIRED', 'ACTIVE') THEN OLD."resourceId" END)
        IS DISTINCT FROM (CASE WHEN NEW.status IN ('ACQUIRED', 'ACTIVE') THEN NEW."resourceId" END))
  EXECUTE FUNCTION "drydock_lease_count_row"();
CREATE TRIGGER "Lease_leaseCount_delete" AFTER DELETE ON "Lease" FOR EACH ROW
  WHEN (OLD."resourceId" IS NOT NULL AND OLD.status IN ('ACQUIRED', 'ACTIVE'))
  EXECUTE FUNCTION "drydock_lease_count_row"();

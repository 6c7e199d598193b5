-- LiveResourceCount: each blueprint's live (not DESTROYED) resources, kept by the database. A host
-- pool that is full is asked for a free host by every scheduling pass that serves its type, and with
-- the count it answers "every host is taken" from one row, read with the pass's allocation view,
-- instead of counting the whole pool on every pass.
--
-- The triggers are constraint triggers deferred to commit, so that the count's row is locked last
-- in every transaction and only while it commits. Taken at the write, that lock would be held
-- from a pass's first build to its commit, and a resource's teardown (which holds the resource's
-- row and then moves the count) and a pass (which holds the count and then locks the resources it
-- grants on) could each wait for the other. At commit a transaction locks nothing else after it.
-- The cost: inside a transaction, its own changes are not in the count until it commits (see
-- AllocationQueries.liveResourceCount).
--
-- Migrations reach PostgreSQL through a driver adapter that splits the script at every
-- semicolon, quoted or not: the trigger functions' bodies are escape strings whose semicolons are
-- written \073.

-- CreateTable
CREATE TABLE "LiveResourceCount" (
    "blueprintId" INTEGER NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "LiveResourceCount_pkey" PRIMARY KEY ("blueprintId")
);

-- AddForeignKey
ALTER TABLE "LiveResourceCount" ADD CONSTRAINT "LiveResourceCount_blueprintId_fkey" FOREIGN KEY ("blueprintId") REFERENCES "Blueprint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE FUNCTION "drydock_live_resource_count"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  IF TG_OP <> ''INSERT'' AND OLD.status <> ''DESTROYED'' THEN
    UPDATE "LiveResourceCount" SET count = count - 1 WHERE "blueprintId" = OLD."blueprintId"\073
  END IF\073
  IF TG_OP <> ''DELETE'' AND NEW.status <> ''DESTROYED'' THEN
    INSERT INTO "LiveResourceCount" ("blueprintId", count) VALUES (NEW."blueprintId", 1)
    ON CONFLICT ("blueprintId") DO UPDATE SET count = "LiveResourceCount".count + 1\073
  END IF\073
  RETURN NULL\073
END';

CREATE CONSTRAINT TRIGGER "Resource_liveCount_insert" AFTER INSERT ON "Resource"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.status <> 'DESTROYED')
  EXECUTE FUNCTION "drydock_live_resource_count"();
-- Only a change of what counts fires: PENDING → ACTIVE → RELEASED are all live.
CREATE CONSTRAINT TRIGGER "Resource_liveCount_update" AFTER UPDATE OF status, "blueprintId" ON "Resource"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN ((CASE WHEN OLD.status <> 'DESTROYED' THEN OLD."blueprintId" END)
        IS DISTINCT FROM (CASE WHEN NEW.status <> 'DESTROYED' THEN NEW."blueprintId" END))
  EXECUTE FUNCTION "drydock_live_resource_count"();
CREATE CONSTRAINT TRIGGER "Resource_liveCount_delete" AFTER DELETE ON "Resource"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.status <> 'DESTROYED')
  EXECUTE FUNCTION "drydock_live_resource_count"();

-- A TRUNCATE fires no row triggers: every count is then 0.
CREATE FUNCTION "drydock_live_resource_count_truncate"() RETURNS trigger LANGUAGE plpgsql AS E'
BEGIN
  DELETE FROM "LiveResourceCount"\073
  RETURN NULL\073
END';
CREATE TRIGGER "Resource_liveCount_truncate" AFTER TRUNCATE ON "Resource"
  FOR EACH STATEMENT EXECUTE FUNCTION "drydock_live_resource_count_truncate"();

-- The counts of the resources that are already there.
INSERT INTO "LiveResourceCount" ("blueprintId", count)
SELECT r."blueprintId", count(*) FROM "Resource" r WHERE r.status <> 'DESTROYED' GROUP BY r."blueprintId";

-- DropIndex
DROP INDEX "Lease_resourceType_ownerId_status_idx";

-- CreateIndex
CREATE INDEX "Lease_live_owner_idx" ON "Lease"("resourceType", "ownerId") WHERE (status = ANY (ARRAY['ACQUIRED'::"LeaseStatus", 'ACTIVE'::"LeaseStatus"]));

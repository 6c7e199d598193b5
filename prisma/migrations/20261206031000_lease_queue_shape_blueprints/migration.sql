-- DropIndex
DROP INDEX "Lease_pending_queue_idx";

-- CreateIndex
CREATE INDEX "Lease_pending_queue_idx" ON "Lease"("resourceType", "attributes", "allowedBlueprintIds", "priority" DESC, "id") WHERE (status = 'PENDING');

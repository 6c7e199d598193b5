-- DropIndex
DROP INDEX "Lease_resourceType_status_attributes_priority_id_idx";

-- CreateIndex
CREATE INDEX "Lease_pending_queue_idx" ON "Lease"("resourceType", "attributes", "priority" DESC, "id") WHERE (status = 'PENDING');

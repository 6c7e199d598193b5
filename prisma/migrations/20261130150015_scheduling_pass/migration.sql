-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'SCHEDULING_PASS';

-- AlterTable
ALTER TABLE "Lease" ADD COLUMN     "gangId" INTEGER,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "waitUntil" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Principal" ADD COLUMN     "weight" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "Resource" ADD COLUMN     "leaseCount" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "Gang" (
    "id" SERIAL NOT NULL,
    "ownerId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Gang_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ResourceTypeQueue" (
    "id" SERIAL NOT NULL,
    "resourceType" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ResourceTypeQueue_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Quota" (
    "id" SERIAL NOT NULL,
    "principalId" INTEGER NOT NULL,
    "resourceType" TEXT NOT NULL,
    "maxLeases" INTEGER NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Quota_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ResourceTypeQueue_resourceType_key" ON "ResourceTypeQueue"("resourceType");

-- CreateIndex
CREATE UNIQUE INDEX "Quota_principalId_resourceType_key" ON "Quota"("principalId", "resourceType");

-- CreateIndex
CREATE INDEX "Lease_gangId_idx" ON "Lease"("gangId");

-- CreateIndex
CREATE INDEX "Lease_resourceType_status_attributes_priority_id_idx" ON "Lease"("resourceType", "status", "attributes", "priority" DESC, "id");

-- CreateIndex
CREATE INDEX "Lease_resourceType_ownerId_status_idx" ON "Lease"("resourceType", "ownerId", "status");

-- CreateIndex
CREATE INDEX "Resource_blueprintId_status_leaseCount_id_idx" ON "Resource"("blueprintId", "status", "leaseCount", "id");

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_gangId_fkey" FOREIGN KEY ("gangId") REFERENCES "Gang"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Quota" ADD CONSTRAINT "Quota_principalId_fkey" FOREIGN KEY ("principalId") REFERENCES "Principal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

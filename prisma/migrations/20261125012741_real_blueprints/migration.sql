-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'BLUEPRINT_MAINTENANCE';

-- AlterTable
ALTER TABLE "Lease" ADD COLUMN     "ownerResourceId" INTEGER;

-- CreateTable
CREATE TABLE "Credential" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "createdById" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "Credential_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Credential_name_key" ON "Credential"("name");

-- CreateIndex
CREATE INDEX "Lease_ownerResourceId_idx" ON "Lease"("ownerResourceId");

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_ownerResourceId_fkey" FOREIGN KEY ("ownerResourceId") REFERENCES "Resource"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Credential" ADD CONSTRAINT "Credential_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "Principal"("id") ON DELETE SET NULL ON UPDATE CASCADE;

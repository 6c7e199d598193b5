-- CreateEnum
CREATE TYPE "LeaseStatus" AS ENUM ('PENDING', 'ACQUIRED', 'ACTIVE', 'RELEASED', 'BROKEN', 'DESTROYED');

-- CreateEnum
CREATE TYPE "ResourceStatus" AS ENUM ('PENDING', 'ACTIVE', 'RELEASED', 'BROKEN', 'DESTROYED');

-- CreateEnum
CREATE TYPE "CommandKind" AS ENUM ('RELEASE', 'RECLAIM');

-- CreateEnum
CREATE TYPE "PrincipalKind" AS ENUM ('USER', 'SERVICE', 'BLUEPRINT', 'SYSTEM');

-- CreateEnum
CREATE TYPE "AuthorizationBlueprintState" AS ENUM ('REQUESTED', 'AUTHORIZED', 'DECLINED');

-- CreateEnum
CREATE TYPE "AuthorizationObjectState" AS ENUM ('ACTIVE', 'INACTIVE');

-- CreateEnum
CREATE TYPE "JobKind" AS ENUM ('LEASE_UPDATE', 'RESOURCE_UPDATE');

-- CreateTable
CREATE TABLE "Principal" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "kind" "PrincipalKind" NOT NULL,
    "isAdmin" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Principal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiToken" (
    "id" SERIAL NOT NULL,
    "principalId" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "expiresAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Blueprint" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "implementation" TEXT NOT NULL,
    "resourceType" TEXT NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "resourceLimit" INTEGER,
    "createdById" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Blueprint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Resource" (
    "id" SERIAL NOT NULL,
    "blueprintId" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "status" "ResourceStatus" NOT NULL DEFAULT 'PENDING',
    "attributes" JSONB NOT NULL DEFAULT '{}',
    "allocatedForLeaseId" INTEGER,
    "until" TIMESTAMP(3),
    "lastUsedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "statusReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "activatedAt" TIMESTAMP(3),
    "releasedAt" TIMESTAMP(3),
    "destroyedAt" TIMESTAMP(3),

    CONSTRAINT "Resource_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Lease" (
    "id" SERIAL NOT NULL,
    "resourceType" TEXT NOT NULL,
    "attributes" JSONB NOT NULL DEFAULT '{}',
    "status" "LeaseStatus" NOT NULL DEFAULT 'PENDING',
    "resourceId" INTEGER,
    "ownerId" INTEGER,
    "authorizingPrincipalId" INTEGER,
    "allowedBlueprintIds" INTEGER[] DEFAULT ARRAY[]::INTEGER[],
    "until" TIMESTAMP(3),
    "blocker" JSONB,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "statusReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "acquiredAt" TIMESTAMP(3),
    "activatedAt" TIMESTAMP(3),
    "releasedAt" TIMESTAMP(3),
    "destroyedAt" TIMESTAMP(3),

    CONSTRAINT "Lease_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SlotLock" (
    "id" BIGSERIAL NOT NULL,
    "key" TEXT NOT NULL,
    "ownerLeaseId" INTEGER,
    "ownerResourceId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SlotLock_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Command" (
    "id" BIGSERIAL NOT NULL,
    "kind" "CommandKind" NOT NULL,
    "targetLeaseId" INTEGER,
    "targetResourceId" INTEGER,
    "authorId" INTEGER,
    "consumed" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "consumedAt" TIMESTAMP(3),

    CONSTRAINT "Command_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Log" (
    "id" BIGSERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "data" JSONB NOT NULL DEFAULT '{}',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "blueprintId" INTEGER,
    "resourceId" INTEGER,
    "leaseId" INTEGER,

    CONSTRAINT "Log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Authorization" (
    "id" SERIAL NOT NULL,
    "blueprintId" INTEGER NOT NULL,
    "principalId" INTEGER NOT NULL,
    "blueprintState" "AuthorizationBlueprintState" NOT NULL DEFAULT 'REQUESTED',
    "objectState" "AuthorizationObjectState" NOT NULL DEFAULT 'ACTIVE',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Authorization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Job" (
    "id" BIGSERIAL NOT NULL,
    "key" TEXT NOT NULL,
    "kind" "JobKind" NOT NULL,
    "targetId" INTEGER NOT NULL,
    "runAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lockedBy" TEXT,
    "lockedUntil" TIMESTAMP(3),
    "rerun" BOOLEAN NOT NULL DEFAULT false,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Principal_name_key" ON "Principal"("name");

-- CreateIndex
CREATE UNIQUE INDEX "ApiToken_tokenHash_key" ON "ApiToken"("tokenHash");

-- CreateIndex
CREATE INDEX "ApiToken_principalId_idx" ON "ApiToken"("principalId");

-- CreateIndex
CREATE UNIQUE INDEX "Blueprint_name_key" ON "Blueprint"("name");

-- CreateIndex
CREATE INDEX "Blueprint_resourceType_disabled_idx" ON "Blueprint"("resourceType", "disabled");

-- CreateIndex
CREATE INDEX "Resource_blueprintId_type_status_idx" ON "Resource"("blueprintId", "type", "status");

-- CreateIndex
CREATE INDEX "Resource_type_status_idx" ON "Resource"("type", "status");

-- CreateIndex
CREATE INDEX "Resource_allocatedForLeaseId_status_idx" ON "Resource"("allocatedForLeaseId", "status");

-- CreateIndex
CREATE INDEX "Lease_resourceId_status_idx" ON "Lease"("resourceId", "status");

-- CreateIndex
CREATE INDEX "Lease_status_resourceType_id_idx" ON "Lease"("status", "resourceType", "id");

-- CreateIndex
CREATE INDEX "Lease_ownerId_id_idx" ON "Lease"("ownerId", "id");

-- CreateIndex
CREATE UNIQUE INDEX "SlotLock_key_key" ON "SlotLock"("key");

-- CreateIndex
CREATE INDEX "SlotLock_ownerLeaseId_idx" ON "SlotLock"("ownerLeaseId");

-- CreateIndex
CREATE INDEX "SlotLock_ownerResourceId_idx" ON "SlotLock"("ownerResourceId");

-- CreateIndex
CREATE INDEX "Command_targetLeaseId_consumed_id_idx" ON "Command"("targetLeaseId", "consumed", "id");

-- CreateIndex
CREATE INDEX "Command_targetResourceId_consumed_id_idx" ON "Command"("targetResourceId", "consumed", "id");

-- CreateIndex
CREATE INDEX "Log_leaseId_id_idx" ON "Log"("leaseId", "id");

-- CreateIndex
CREATE INDEX "Log_resourceId_id_idx" ON "Log"("resourceId", "id");

-- CreateIndex
CREATE INDEX "Log_blueprintId_id_idx" ON "Log"("blueprintId", "id");

-- CreateIndex
CREATE INDEX "Authorization_principalId_idx" ON "Authorization"("principalId");

-- CreateIndex
CREATE UNIQUE INDEX "Authorization_blueprintId_principalId_key" ON "Authorization"("blueprintId", "principalId");

-- CreateIndex
CREATE UNIQUE INDEX "Job_key_key" ON "Job"("key");

-- CreateIndex
CREATE INDEX "Job_runAt_idx" ON "Job"("runAt");

-- CreateIndex
CREATE INDEX "Job_lockedUntil_idx" ON "Job"("lockedUntil");

-- AddForeignKey
ALTER TABLE "ApiToken" ADD CONSTRAINT "ApiToken_principalId_fkey" FOREIGN KEY ("principalId") REFERENCES "Principal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Blueprint" ADD CONSTRAINT "Blueprint_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "Principal"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Resource" ADD CONSTRAINT "Resource_blueprintId_fkey" FOREIGN KEY ("blueprintId") REFERENCES "Blueprint"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_resourceId_fkey" FOREIGN KEY ("resourceId") REFERENCES "Resource"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_ownerId_fkey" FOREIGN KEY ("ownerId") REFERENCES "Principal"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Lease" ADD CONSTRAINT "Lease_authorizingPrincipalId_fkey" FOREIGN KEY ("authorizingPrincipalId") REFERENCES "Principal"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SlotLock" ADD CONSTRAINT "SlotLock_ownerLeaseId_fkey" FOREIGN KEY ("ownerLeaseId") REFERENCES "Lease"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SlotLock" ADD CONSTRAINT "SlotLock_ownerResourceId_fkey" FOREIGN KEY ("ownerResourceId") REFERENCES "Resource"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Command" ADD CONSTRAINT "Command_targetLeaseId_fkey" FOREIGN KEY ("targetLeaseId") REFERENCES "Lease"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Command" ADD CONSTRAINT "Command_targetResourceId_fkey" FOREIGN KEY ("targetResourceId") REFERENCES "Resource"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Command" ADD CONSTRAINT "Command_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "Principal"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Log" ADD CONSTRAINT "Log_blueprintId_fkey" FOREIGN KEY ("blueprintId") REFERENCES "Blueprint"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Log" ADD CONSTRAINT "Log_resourceId_fkey" FOREIGN KEY ("resourceId") REFERENCES "Resource"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Log" ADD CONSTRAINT "Log_leaseId_fkey" FOREIGN KEY ("leaseId") REFERENCES "Lease"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Authorization" ADD CONSTRAINT "Authorization_blueprintId_fkey" FOREIGN KEY ("blueprintId") REFERENCES "Blueprint"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Authorization" ADD CONSTRAINT "Authorization_principalId_fkey" FOREIGN KEY ("principalId") REFERENCES "Principal"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

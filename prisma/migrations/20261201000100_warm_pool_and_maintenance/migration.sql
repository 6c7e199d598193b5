-- AlterEnum
ALTER TYPE "JobKind" ADD VALUE 'WARM_POOL';

-- AlterTable
ALTER TABLE "Blueprint" ADD COLUMN     "minReady" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "warmAttributes" JSONB NOT NULL DEFAULT '{}';

-- AlterTable
ALTER TABLE "Resource" ADD COLUMN     "drainedForMaintenance" BOOLEAN NOT NULL DEFAULT false;

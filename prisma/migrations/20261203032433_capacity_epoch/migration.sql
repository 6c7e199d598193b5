-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "capacityMark" BIGINT;

-- AlterTable
ALTER TABLE "ResourceTypeQueue" ADD COLUMN     "capacityEpoch" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "capacityMark" BIGINT,
ADD COLUMN     "epochAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- AlterTable
ALTER TABLE "Lease" ADD COLUMN     "fence" INTEGER,
ADD COLUMN     "heartbeatSeconds" INTEGER,
ADD COLUMN     "lastSeenAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Resource" ADD COLUMN     "fenceCounter" INTEGER NOT NULL DEFAULT 0;

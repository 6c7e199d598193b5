-- AlterTable
ALTER TABLE "Resource" ADD COLUMN     "drainingAt" TIMESTAMP(3),
ADD COLUMN     "releaseWhenDrained" BOOLEAN NOT NULL DEFAULT false;

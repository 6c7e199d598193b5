-- CreateEnum
CREATE TYPE "TokenScope" AS ENUM ('READ', 'LEASE', 'ADMIN');

-- AlterTable
ALTER TABLE "ApiToken" ADD COLUMN     "scopes" "TokenScope"[] DEFAULT ARRAY['READ', 'LEASE']::"TokenScope"[];

-- Tokens of administrators keep doing everything they did: they become ADMIN tokens
UPDATE "ApiToken" SET "scopes" = ARRAY['ADMIN']::"TokenScope"[]
FROM "Principal" WHERE "Principal"."id" = "ApiToken"."principalId" AND "Principal"."isAdmin";

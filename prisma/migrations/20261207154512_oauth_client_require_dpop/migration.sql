-- AlterTable
ALTER TABLE "oauth_clients" ADD COLUMN     "require_dpop" BOOLEAN NOT NULL DEFAULT false;

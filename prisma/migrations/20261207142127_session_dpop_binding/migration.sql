-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "dpop_jkt" TEXT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "imported_at" TIMESTAMPTZ(3),
ADD COLUMN     "imported_hash_digest" TEXT;

-- DropForeignKey
ALTER TABLE "images" DROP CONSTRAINT "images_owner_id_fkey";

-- AlterTable
ALTER TABLE "images" ALTER COLUMN "owner_id" DROP NOT NULL;

-- AddForeignKey
ALTER TABLE "images" ADD CONSTRAINT "images_owner_id_fkey" FOREIGN KEY ("owner_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

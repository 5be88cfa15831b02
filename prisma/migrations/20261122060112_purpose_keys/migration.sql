-- CreateTable
CREATE TABLE "purpose_keys" (
    "purpose" TEXT NOT NULL,
    "generation" INTEGER NOT NULL,
    "secret_sealed" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "activates_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "purpose_keys_pkey" PRIMARY KEY ("purpose","generation")
);

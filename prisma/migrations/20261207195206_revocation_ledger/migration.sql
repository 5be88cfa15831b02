-- CreateTable
CREATE TABLE "revocation_entries" (
    "key" TEXT NOT NULL,
    "cutoff_ms" BIGINT,
    "deadline_ms" BIGINT NOT NULL,

    CONSTRAINT "revocation_entries_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "revocation_entries_deadline_ms_idx" ON "revocation_entries"("deadline_ms");

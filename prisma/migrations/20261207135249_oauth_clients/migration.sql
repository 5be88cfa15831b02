-- CreateTable
CREATE TABLE "oauth_clients" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "secret_hash" TEXT,
    "token_endpoint_auth_method" TEXT NOT NULL,
    "redirect_uris" TEXT[],
    "post_logout_redirect_uris" TEXT[],
    "grant_types" TEXT[],
    "scopes" TEXT[],
    "resources" TEXT[],
    "first_party" BOOLEAN NOT NULL DEFAULT false,
    "introspection" BOOLEAN NOT NULL DEFAULT false,
    "backchannel_logout_uri" TEXT,
    "jwks" JSONB,
    "jwks_uri" TEXT,
    "dynamic" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "oauth_clients_pkey" PRIMARY KEY ("id")
);

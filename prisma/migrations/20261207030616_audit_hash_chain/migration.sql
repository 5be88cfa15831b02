-- The audit log becomes append-only in fact and tamper-evident:
--   * every event is chained to the one before it: `seq` 1, 2, 3 …, `prev_hash` (the previous event's `hash`) and
--     `hash` = SHA-256 over the event's fields and prev_hash (the form is spelled out in audit_event_hash below and
--     again, independently, in src/features/audit/audit-chain.ts, which verifies it);
--   * triggers refuse UPDATE, DELETE and TRUNCATE; the only way out is audit_prune(before), the retention sweep, which
--     removes the oldest events only, never the newest one, and never one less than a day old.
-- A superuser or the table's owner can still disable triggers (ALTER TABLE … DISABLE TRIGGER, session_replication_role);
-- the chain is what shows that afterwards (npm run audit:verify, GET /admin/audit/verify).
-- A later migration that must rewrite rows has to disable these triggers for its own transaction, and re-chain.

-- AlterTable
ALTER TABLE "audit_events" ADD COLUMN     "hash" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "prev_hash" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "seq" BIGINT NOT NULL DEFAULT 0;

-- The rule only made an UPDATE silently do nothing (and would swallow the backfill below); triggers refuse it instead.
DROP RULE IF EXISTS audit_events_append_only ON "audit_events";

-- The canonical form: the fields below in this order, each written `<length in UTF-8 bytes>:<text>` (or `-` for
-- NULL), joined by `|`, hashed with SHA-256, hex. The time is ISO 8601 in UTC with milliseconds; details is jsonb's
-- own text form (keys sorted, one space after `:` and `,`), so the same object always gives the same text.
CREATE FUNCTION audit_event_hash(event audit_events) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(string_agg(CASE WHEN field IS NULL THEN '-' ELSE octet_length(field) || ':' || field END, '|' ORDER BY position), 'UTF8')), 'hex')
  FROM unnest(ARRAY[
    'authkit-audit-v1',
    event.seq::text,
    event.id::text,
    event.type,
    event.actor_id::text,
    event.target_id::text,
    event.ip,
    event.user_agent,
    event.request_id,
    event.details::text,
    to_char(event.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    event.prev_hash
  ]) WITH ORDINALITY AS fields(field, position)
$$;

-- Events already written are chained in the order they happened (created_at, then id), from the genesis hash.
DO $$
DECLARE
  event audit_events;
  last_seq bigint := 0;
  last_hash text := repeat('0', 64);
BEGIN
  FOR event IN SELECT * FROM audit_events ORDER BY created_at, id LOOP
    event.seq := last_seq + 1;
    event.prev_hash := last_hash;
    event.hash := audit_event_hash(event);
    UPDATE audit_events SET seq = event.seq, prev_hash = event.prev_hash, hash = event.hash WHERE id = event.id;
    last_seq := event.seq;
    last_hash := event.hash;
  END LOOP;
END $$;

-- CreateIndex
CREATE UNIQUE INDEX "audit_events_seq_key" ON "audit_events"("seq");

-- Chains each new event to the last one. The advisory lock (held until the inserting transaction ends) makes appends
-- from every connection and instance take turns, so they form one line; under READ COMMITTED each query here sees the
-- event committed just before. A transaction with an older snapshot would pick a seq already taken: the unique index
-- refuses it rather than fork the chain.
CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('authkit.audit_events.chain', 0));
  SELECT seq, hash INTO last_seq, last_hash FROM audit_events ORDER BY seq DESC LIMIT 1;
  NEW.seq := COALESCE(last_seq, 0) + 1;
  NEW.prev_hash := COALESCE(last_hash, repeat('0', 64));
  NEW.hash := audit_event_hash(NEW);
  RETURN NEW;
END $$;

CREATE TRIGGER audit_events_chain BEFORE INSERT ON "audit_events" FOR EACH ROW EXECUTE FUNCTION audit_events_chain();

CREATE FUNCTION audit_events_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % is refused', TG_OP
    USING HINT = 'Events leave only through the retention sweep, audit_prune(before).';
END $$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse();

-- A DELETE runs only inside audit_prune (which turns authkit.audit_prune on for the moment it deletes). Anyone can set
-- that flag by hand, so the rows a DELETE removed are checked as well: only the oldest events (a prefix of the chain,
-- so what remains still verifies from its first event), never all of them, and none less than a day old.
CREATE FUNCTION audit_events_refuse_unless_pruning() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('authkit.audit_prune', true) IS DISTINCT FROM 'on' THEN
    RAISE EXCEPTION 'audit_events is append-only: DELETE is refused'
      USING HINT = 'Events leave only through the retention sweep, audit_prune(before).';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION audit_events_check_pruned() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  newest_pruned bigint;
  youngest_pruned timestamptz;
  oldest_kept bigint;
BEGIN
  SELECT max(seq), max(created_at) INTO newest_pruned, youngest_pruned FROM pruned;
  IF newest_pruned IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT min(seq) INTO oldest_kept FROM audit_events;
  IF oldest_kept IS NULL OR oldest_kept < newest_pruned THEN
    RAISE EXCEPTION 'audit_events: only the oldest events may be pruned, and never the newest one';
  END IF;
  IF youngest_pruned >= now() - interval '1 day' THEN
    RAISE EXCEPTION 'audit_events: an event less than a day old is never pruned';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON "audit_events" FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_unless_pruning();
CREATE TRIGGER audit_events_prune_prefix AFTER DELETE ON "audit_events" REFERENCING OLD TABLE AS pruned FOR EACH STATEMENT EXECUTE FUNCTION audit_events_check_pruned();

-- The retention sweep: removes the events before the first one at or after `before` (clamped to a day ago), keeping
-- the newest event whatever its age so the chain always has a head. Returns how many went. SECURITY DEFINER, so a
-- service role that may not DELETE (or does not own the table) can still prune; only roles granted EXECUTE may call it.
CREATE FUNCTION audit_prune(before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  cutoff timestamptz := LEAST(before, now() - interval '1 day');
  first_kept bigint;
  pruned bigint;
BEGIN
  -- Walks the seq index from the oldest event, so it reads only what it is about to delete (plus one).
  SELECT seq INTO first_kept FROM audit_events WHERE created_at >= cutoff ORDER BY seq LIMIT 1;
  IF first_kept IS NULL THEN
    SELECT max(seq) INTO first_kept FROM audit_events;
  END IF;
  IF first_kept IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM set_config('authkit.audit_prune', 'on', true);
  DELETE FROM audit_events WHERE seq < first_kept;
  GET DIAGNOSTICS pruned = ROW_COUNT;
  PERFORM set_config('authkit.audit_prune', 'off', true);
  RETURN pruned;
END $$;

REVOKE EXECUTE ON FUNCTION audit_prune(timestamptz) FROM PUBLIC;

-- A SECURITY DEFINER function must not resolve names through the caller's search_path: pin it to this schema.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION audit_prune(timestamptz) SET search_path = %I, pg_temp', current_schema());
END $$;

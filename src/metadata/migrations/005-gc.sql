-- Online garbage collection (SPEC §9, docs/adr/0005-online-gc.md).

-- Digests the operator found in running Pods: never collected, and every
-- manifest with such a digest is a GC root (with its children and referrers).
CREATE TABLE protected_digests (
  digest       text COLLATE "C" PRIMARY KEY,
  reason       text,
  pod          text,
  recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- When a blob was last committed by an upload. `created_at` is the first
-- commit only: a client re-pushing a blob the registry already holds makes it
-- young again, so the grace window protects it until its manifest arrives.
ALTER TABLE blobs ADD COLUMN touched_at timestamptz NOT NULL DEFAULT now();

-- Blob rows the sweep deleted whose storage objects are not deleted yet. The
-- rows go first (in one transaction with this queue), the objects after: a
-- crash in between leaves queued objects the next run deletes (resumable),
-- never a row without its object.
CREATE TABLE gc_pending_objects (
  digest       text COLLATE "C" PRIMARY KEY,
  storage_key  text NOT NULL,
  queued_at    timestamptz NOT NULL DEFAULT now()
);

-- Recently collected digests, so a manifest transaction that verified its
-- blob links before the sweep removed them is refused (trigger below) instead
-- of committing a manifest whose blob is gone. Pruned after an hour: far
-- longer than any manifest transaction (statement_timeout is 30 s).
CREATE TABLE gc_collected (
  digest        text COLLATE "C" PRIMARY KEY,
  collected_at  timestamptz NOT NULL DEFAULT now()
);

-- One row: the last run's summary, for `drydock gc` and operators.
CREATE TABLE gc_state (
  id           int PRIMARY KEY CHECK (id = 1),
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  summary      jsonb
);

-- The manifest side of the sweep's per-digest lock. Adding references takes
-- `blob:<digest>` for every referenced blob (sorted, one statement, so two
-- transactions never deadlock on them) — the same lock the sweep holds while
-- it re-checks and deletes a blob. Then, in a local repository (whose manifest
-- service verified the links before inserting), a referenced blob that is not
-- linked any more and was just collected means the sweep won the race: refuse
-- the manifest (the client sees an error and pushes the blob again) rather
-- than store a manifest pointing at deleted bytes. Child manifests of a local
-- index are pinned with FOR KEY SHARE, which conflicts with the sweep's
-- FOR UPDATE on the manifests it removes; a child it just removed refuses the index.
CREATE FUNCTION gc_guard_manifest_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('blob:' || d.child_digest))
    FROM (SELECT DISTINCT child_digest FROM new_refs WHERE child_kind = 'blob' ORDER BY 1) d;

  IF EXISTS (
    SELECT 1 FROM new_refs r
      JOIN repositories rp ON rp.key = r.repo_key AND rp.rclass = 'local'
      JOIN gc_collected c ON c.digest = r.child_digest
     WHERE r.child_kind = 'blob'
       AND NOT EXISTS (SELECT 1 FROM repository_blobs l
                        WHERE l.repo_key = r.repo_key AND l.image = r.image AND l.digest = r.child_digest)
  ) THEN
    RAISE EXCEPTION 'a blob this manifest references was garbage-collected concurrently; push it again'
      USING ERRCODE = '40001';
  END IF;

  -- Pin the children that exist; then one missing that GC just collected means
  -- GC won the race. (The store lets an index name absent children otherwise.)
  PERFORM 1 FROM manifests m
   WHERE (m.repo_key, m.image, m.digest) IN (
     SELECT r.repo_key, r.image, r.child_digest FROM new_refs r WHERE r.child_kind = 'manifest')
   FOR KEY SHARE;
  IF EXISTS (
    SELECT 1 FROM new_refs r
      JOIN repositories rp ON rp.key = r.repo_key AND rp.rclass = 'local'
      JOIN gc_collected c ON c.digest = r.child_digest
     WHERE r.child_kind = 'manifest'
       AND NOT EXISTS (SELECT 1 FROM manifests m
                        WHERE m.repo_key = r.repo_key AND m.image = r.image AND m.digest = r.child_digest)
  ) THEN
    RAISE EXCEPTION 'a manifest this index references was garbage-collected concurrently; push it again'
      USING ERRCODE = '40001';
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER manifest_references_gc_guard
  AFTER INSERT ON manifest_references
  REFERENCING NEW TABLE AS new_refs
  FOR EACH STATEMENT EXECUTE FUNCTION gc_guard_manifest_references();

-- Every identifier column (keys, names, digests) uses COLLATE "C": lists are
-- paginated in byte-wise order (the distribution spec's `n`/`last`), and with
-- the column collation equal to the queries' COLLATE "C" the primary-key indexes
-- serve those ordered scans whatever the database's default collation is.

-- Repository configuration: one row per repository key. `config` holds the
-- Artifactory-shaped fields (validated by the repository zod schema on the way in).
CREATE TABLE repositories (
  key         text COLLATE "C" PRIMARY KEY,
  rclass      text NOT NULL CHECK (rclass IN ('local', 'remote', 'virtual')),
  config      jsonb NOT NULL,
  managed_by  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every committed blob, once, whatever the repositories that link it.
CREATE TABLE blobs (
  digest       text COLLATE "C" PRIMARY KEY,
  size         bigint NOT NULL,
  storage_key  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- A blob is visible in an image of a repository only through a link.
CREATE TABLE repository_blobs (
  repo_key    text COLLATE "C" NOT NULL REFERENCES repositories(key) ON DELETE CASCADE,
  image       text COLLATE "C" NOT NULL,
  digest      text COLLATE "C" NOT NULL REFERENCES blobs(digest),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo_key, image, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- Manifests are small: their exact bytes live here, served byte-for-byte.
CREATE TABLE manifests (
  repo_key       text COLLATE "C" NOT NULL REFERENCES repositories(key) ON DELETE CASCADE,
  image          text COLLATE "C" NOT NULL,
  digest         text COLLATE "C" NOT NULL,
  media_type     text NOT NULL,
  artifact_type  text,
  subject        text COLLATE "C",
  size           bigint NOT NULL,
  content        bytea NOT NULL,
  annotations    jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo_key, image, digest)
);
CREATE INDEX manifests_subject ON manifests (repo_key, image, subject) WHERE subject IS NOT NULL;
CREATE INDEX manifests_digest ON manifests (digest);

-- What a manifest points at: blobs (config, layers) and child manifests (index).
CREATE TABLE manifest_references (
  repo_key      text COLLATE "C" NOT NULL,
  image         text COLLATE "C" NOT NULL,
  digest        text COLLATE "C" NOT NULL,
  child_digest  text COLLATE "C" NOT NULL,
  child_kind    text NOT NULL CHECK (child_kind IN ('blob', 'manifest')),
  PRIMARY KEY (repo_key, image, digest, child_digest),
  FOREIGN KEY (repo_key, image, digest) REFERENCES manifests (repo_key, image, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_references_child ON manifest_references (child_digest);

CREATE TABLE tags (
  repo_key    text COLLATE "C" NOT NULL,
  image       text COLLATE "C" NOT NULL,
  name        text COLLATE "C" NOT NULL,
  digest      text COLLATE "C" NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo_key, image, name),
  FOREIGN KEY (repo_key, image, digest) REFERENCES manifests (repo_key, image, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags (repo_key, image, digest);

-- Upload sessions survive restarts and may move between processes.
CREATE TABLE uploads (
  -- text, not uuid: an id arriving in a URL is looked up as given (a malformed
  -- one is simply absent instead of a cast error), and it reads back unchanged.
  id             text COLLATE "C" PRIMARY KEY,
  repo_key       text COLLATE "C" NOT NULL REFERENCES repositories(key) ON DELETE CASCADE,
  image          text COLLATE "C" NOT NULL,
  size           bigint NOT NULL DEFAULT 0,
  driver_state   jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
-- The stale-session sweep reads oldest first.
CREATE INDEX uploads_updated_at ON uploads (updated_at);

-- Users, for the admin bootstrap now and full access control later.
CREATE TABLE users (
  name           text COLLATE "C" PRIMARY KEY,
  password_hash  text,
  email          text,
  admin          boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Small key/value settings (generated secrets, first-start markers).
CREATE TABLE settings (
  name        text COLLATE "C" PRIMARY KEY,
  value       jsonb NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

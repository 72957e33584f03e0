-- Who is fetching what from an upstream right now, so that registry processes
-- sharing one database make one upstream fetch per blob between them.
CREATE TABLE fetch_leases (
  key         text COLLATE "C" PRIMARY KEY,
  owner       text NOT NULL,
  expires_at  timestamptz NOT NULL
);

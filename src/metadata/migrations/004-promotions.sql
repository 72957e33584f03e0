-- Every promotion (SPEC §6): one row per promoted tag. No foreign keys to
-- `repositories`: this is history, kept when a repository is deleted, and read
-- back by repository key from either side.
CREATE TABLE promotions (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  actor         text NOT NULL,
  source_repo   text COLLATE "C" NOT NULL,
  target_repo   text COLLATE "C" NOT NULL,
  image         text COLLATE "C" NOT NULL,
  target_image  text COLLATE "C" NOT NULL,
  tag           text COLLATE "C" NOT NULL,
  target_tag    text COLLATE "C" NOT NULL,
  digest        text COLLATE "C" NOT NULL,
  copy          boolean NOT NULL
);
-- "From or into a repository, newest first": one backward scan per side, merged.
CREATE INDEX promotions_source ON promotions (source_repo, id);
CREATE INDEX promotions_target ON promotions (target_repo, id);

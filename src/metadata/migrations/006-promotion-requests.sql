-- Promotions run under an idempotency key (the operator passes its Promotion
-- resource's uid): one row per key, written in the promotion's own
-- transaction, so a caller that crashed after the commit and asks again gets
-- the recorded result instead of a second promotion (or, for a move, a 404).
-- `request` is what the key was first used for: the same key with another
-- request is refused rather than answered with an unrelated result.
-- No foreign keys: like `promotions`, this is history.
CREATE TABLE promotion_requests (
  request_id  text COLLATE "C" PRIMARY KEY,
  request     jsonb NOT NULL,
  result      jsonb NOT NULL,
  at          timestamptz NOT NULL DEFAULT now()
);

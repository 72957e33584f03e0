-- Groups of users; permission targets grant actions to users and groups.
CREATE TABLE groups (
  name         text COLLATE "C" PRIMARY KEY,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_members (
  group_name  text COLLATE "C" NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
  user_name   text COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  PRIMARY KEY (group_name, user_name)
);
CREATE INDEX group_members_user ON group_members (user_name);

-- Artifactory v2 permission targets, stored in their JSON shape (validated on the way in).
CREATE TABLE permission_targets (
  name        text COLLATE "C" PRIMARY KEY,
  target      jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Access tokens: the token itself is a signed JWT never stored; its id (jti) is, for listing and revocation.
CREATE TABLE access_tokens (
  id           text COLLATE "C" PRIMARY KEY,
  user_name    text COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  scope        text NOT NULL,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX access_tokens_user ON access_tokens (user_name);

-- Who did what, when, from where: logins, permission changes, every registry write and delete.
CREATE TABLE audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  action     text NOT NULL,
  target     text,
  outcome    text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  client_ip  text,
  details    jsonb
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- Initial schema. Times are Unix milliseconds (UTC) so both stores share one representation.

CREATE TABLE providers (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    issuer            TEXT    NOT NULL UNIQUE,
    jwks_uri          TEXT,
    enabled           INTEGER NOT NULL DEFAULT 1,
    allowed_algs      TEXT    NOT NULL,
    replay_policy     TEXT    NOT NULL,
    leeway_secs       INTEGER NOT NULL,
    max_lifetime_secs INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);

CREATE TABLE proxies (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    resource         TEXT,
    require_resource INTEGER NOT NULL DEFAULT 0,
    issuance_enabled INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL
);

CREATE TABLE client_mappings (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    proxy_id                 INTEGER NOT NULL REFERENCES proxies (id) ON DELETE CASCADE,
    idp_provider_id          INTEGER NOT NULL REFERENCES providers (id),
    client_id_at_idp         TEXT    NOT NULL,
    client_id_at_resource_as TEXT    NOT NULL,
    allowed_scopes           TEXT    NOT NULL,
    created_at               INTEGER NOT NULL,
    UNIQUE (proxy_id, idp_provider_id, client_id_at_idp)
);

-- Last mapping change per proxy, so deletions move "last updated" too.
CREATE TABLE mapping_changes (
    proxy_id   INTEGER PRIMARY KEY,
    changed_at INTEGER NOT NULL
);

CREATE TABLE resource_clients (
    proxy_id    INTEGER NOT NULL REFERENCES proxies (id) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    rotated_at  INTEGER,
    PRIMARY KEY (proxy_id, client_id)
);

CREATE TABLE id_jag_tokens (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    idp_provider_id          INTEGER NOT NULL,
    proxy_id                 INTEGER NOT NULL,
    jti                      TEXT    NOT NULL,
    subject                  TEXT    NOT NULL,
    client_id                TEXT    NOT NULL,
    client_id_at_resource_as TEXT    NOT NULL,
    scopes                   TEXT    NOT NULL,
    issued_at                INTEGER NOT NULL,
    expires_at               INTEGER NOT NULL,
    first_seen_at            INTEGER NOT NULL,
    last_seen_at             INTEGER NOT NULL,
    presentation_count       INTEGER NOT NULL DEFAULT 1,
    revoked_at               INTEGER,
    revoke_reason            TEXT,
    revoked_by               TEXT,
    -- The replay key: one record per (issuer, jti).
    UNIQUE (idp_provider_id, jti)
);
CREATE INDEX id_jag_tokens_subject ON id_jag_tokens (idp_provider_id, subject);
CREATE INDEX id_jag_tokens_jti ON id_jag_tokens (jti);
CREATE INDEX id_jag_tokens_proxy ON id_jag_tokens (proxy_id, id);
CREATE INDEX id_jag_tokens_expires ON id_jag_tokens (expires_at);

CREATE TABLE access_tokens (
    jti             TEXT    PRIMARY KEY,
    id_jag_id       INTEGER NOT NULL REFERENCES id_jag_tokens (id),
    proxy_id        INTEGER NOT NULL,
    idp_provider_id INTEGER NOT NULL,
    subject         TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    audience        TEXT    NOT NULL,
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoke_reason   TEXT,
    revoked_by      TEXT
);
CREATE INDEX access_tokens_id_jag ON access_tokens (id_jag_id);
CREATE INDEX access_tokens_subject ON access_tokens (idp_provider_id, subject);

CREATE TABLE subject_revocations (
    idp_provider_id INTEGER NOT NULL,
    subject         TEXT    NOT NULL,
    revoked_at      INTEGER NOT NULL,
    reason          TEXT,
    revoked_by      TEXT,
    PRIMARY KEY (idp_provider_id, subject)
);

-- Maintained counters so statistics never scan id_jag_tokens.
CREATE TABLE token_counters (
    proxy_id      INTEGER PRIMARY KEY,
    total         INTEGER NOT NULL DEFAULT 0,
    revoked       INTEGER NOT NULL DEFAULT 0,
    last_token_at INTEGER
);

-- Unrevoked ID-JAG records per proxy and expiry minute; "active" sums the future minutes.
CREATE TABLE token_expiry_buckets (
    proxy_id  INTEGER NOT NULL,
    minute    INTEGER NOT NULL,
    unrevoked INTEGER NOT NULL,
    PRIMARY KEY (proxy_id, minute)
);
CREATE INDEX token_expiry_buckets_minute ON token_expiry_buckets (minute);

-- Exchanges and rejections per proxy and minute, for the dashboard's activity chart.
CREATE TABLE exchange_activity (
    proxy_id  INTEGER NOT NULL,
    minute    INTEGER NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (proxy_id, minute)
);

CREATE TABLE jwks_cache (
    idp_provider_id INTEGER PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    jwks_json       TEXT,
    key_count       INTEGER NOT NULL DEFAULT 0,
    fetched_at      INTEGER,
    expires_at      INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER
);

CREATE TABLE signing_keys (
    kid           TEXT    PRIMARY KEY,
    alg           TEXT    NOT NULL,
    private_pkcs8 BLOB    NOT NULL,
    public_jwk    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    active        INTEGER NOT NULL
);

CREATE TABLE audit_logs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    proxy_id        INTEGER,
    idp_provider_id INTEGER,
    reason_code     TEXT,
    fields          TEXT    NOT NULL
);
CREATE INDEX audit_logs_type ON audit_logs (event_type, id);
CREATE INDEX audit_logs_at ON audit_logs (at);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- revocation_generation: bumped by every revocation; config_generation: by every change to
-- providers, proxies, mappings or clients. Instances poll both to reload their caches.
INSERT INTO counters (name, value) VALUES ('revocation_generation', 0), ('config_generation', 0);

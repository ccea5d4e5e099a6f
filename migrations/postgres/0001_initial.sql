-- Initial schema, the same tables as the SQLite store. Times are Unix milliseconds (UTC) in
-- BIGINT columns so both stores share one representation.

CREATE TABLE providers (
    id                BIGSERIAL PRIMARY KEY,
    name              TEXT      NOT NULL UNIQUE,
    kind              TEXT      NOT NULL,
    issuer            TEXT      NOT NULL UNIQUE,
    jwks_uri          TEXT,
    enabled           BOOLEAN   NOT NULL DEFAULT TRUE,
    allowed_algs      TEXT      NOT NULL,
    replay_policy     TEXT      NOT NULL,
    leeway_secs       BIGINT    NOT NULL,
    max_lifetime_secs BIGINT    NOT NULL,
    created_at        BIGINT    NOT NULL
);

CREATE TABLE proxies (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT      NOT NULL UNIQUE,
    kind             TEXT      NOT NULL,
    resource         TEXT,
    require_resource BOOLEAN   NOT NULL DEFAULT FALSE,
    issuance_enabled BOOLEAN   NOT NULL DEFAULT TRUE,
    created_at       BIGINT    NOT NULL
);

CREATE TABLE client_mappings (
    id                       BIGSERIAL PRIMARY KEY,
    proxy_id                 BIGINT    NOT NULL REFERENCES proxies (id) ON DELETE CASCADE,
    idp_provider_id          BIGINT    NOT NULL REFERENCES providers (id),
    client_id_at_idp         TEXT      NOT NULL,
    client_id_at_resource_as TEXT      NOT NULL,
    allowed_scopes           TEXT      NOT NULL,
    created_at               BIGINT    NOT NULL,
    UNIQUE (proxy_id, idp_provider_id, client_id_at_idp)
);
CREATE INDEX client_mappings_provider ON client_mappings (idp_provider_id);

-- Last mapping change per proxy, so deletions move "last updated" too.
CREATE TABLE mapping_changes (
    proxy_id   BIGINT PRIMARY KEY,
    changed_at BIGINT NOT NULL
);

CREATE TABLE resource_clients (
    proxy_id    BIGINT NOT NULL REFERENCES proxies (id) ON DELETE CASCADE,
    client_id   TEXT   NOT NULL,
    secret_hash BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    rotated_at  BIGINT,
    PRIMARY KEY (proxy_id, client_id)
);

CREATE TABLE id_jag_tokens (
    id                       BIGSERIAL PRIMARY KEY,
    idp_provider_id          BIGINT    NOT NULL,
    proxy_id                 BIGINT    NOT NULL,
    jti                      TEXT      NOT NULL,
    subject                  TEXT      NOT NULL,
    client_id                TEXT      NOT NULL,
    client_id_at_resource_as TEXT      NOT NULL,
    scopes                   TEXT      NOT NULL,
    issued_at                BIGINT    NOT NULL,
    expires_at               BIGINT    NOT NULL,
    first_seen_at            BIGINT    NOT NULL,
    last_seen_at             BIGINT    NOT NULL,
    presentation_count       BIGINT    NOT NULL DEFAULT 1,
    revoked_at               BIGINT,
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
    jti             TEXT   PRIMARY KEY,
    id_jag_id       BIGINT NOT NULL REFERENCES id_jag_tokens (id),
    proxy_id        BIGINT NOT NULL,
    idp_provider_id BIGINT NOT NULL,
    subject         TEXT   NOT NULL,
    client_id       TEXT   NOT NULL,
    scopes          TEXT   NOT NULL,
    audience        TEXT   NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoke_reason   TEXT,
    revoked_by      TEXT
);
CREATE INDEX access_tokens_id_jag ON access_tokens (id_jag_id);
CREATE INDEX access_tokens_subject ON access_tokens (idp_provider_id, subject);

CREATE TABLE subject_revocations (
    idp_provider_id BIGINT NOT NULL,
    subject         TEXT   NOT NULL,
    revoked_at      BIGINT NOT NULL,
    reason          TEXT,
    revoked_by      TEXT,
    PRIMARY KEY (idp_provider_id, subject)
);

-- Maintained counters so statistics never scan id_jag_tokens.
CREATE TABLE token_counters (
    proxy_id      BIGINT PRIMARY KEY,
    total         BIGINT NOT NULL DEFAULT 0,
    revoked       BIGINT NOT NULL DEFAULT 0,
    last_token_at BIGINT
);

-- Unrevoked ID-JAG records per proxy and expiry minute; "active" sums the future minutes.
CREATE TABLE token_expiry_buckets (
    proxy_id  BIGINT NOT NULL,
    minute    BIGINT NOT NULL,
    unrevoked BIGINT NOT NULL,
    PRIMARY KEY (proxy_id, minute)
);
CREATE INDEX token_expiry_buckets_minute ON token_expiry_buckets (minute);

-- Exchanges and rejections per proxy and minute, for the dashboard's activity chart.
CREATE TABLE exchange_activity (
    proxy_id  BIGINT NOT NULL,
    minute    BIGINT NOT NULL,
    succeeded BIGINT NOT NULL DEFAULT 0,
    failed    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (proxy_id, minute)
);

CREATE TABLE jwks_cache (
    idp_provider_id BIGINT PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    jwks_json       TEXT,
    key_count       BIGINT NOT NULL DEFAULT 0,
    fetched_at      BIGINT,
    expires_at      BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT
);

CREATE TABLE signing_keys (
    kid           TEXT    PRIMARY KEY,
    alg           TEXT    NOT NULL,
    private_pkcs8 BYTEA   NOT NULL,
    public_jwk    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    active        BOOLEAN NOT NULL
);

CREATE TABLE audit_logs (
    id              BIGSERIAL PRIMARY KEY,
    at              BIGINT    NOT NULL,
    event_type      TEXT      NOT NULL,
    actor           TEXT      NOT NULL,
    proxy_id        BIGINT,
    idp_provider_id BIGINT,
    reason_code     TEXT,
    -- The event's fields as a JSON object in text, as the SQLite store keeps them.
    fields          TEXT      NOT NULL
);
CREATE INDEX audit_logs_type ON audit_logs (event_type, id);
CREATE INDEX audit_logs_at ON audit_logs (at);

CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
-- revocation_generation: bumped by every revocation; config_generation: by every change to
-- providers, proxies, mappings or clients. Instances poll both to reload their caches.
INSERT INTO counters (name, value) VALUES ('revocation_generation', 0), ('config_generation', 0);

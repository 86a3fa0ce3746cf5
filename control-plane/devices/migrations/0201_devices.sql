-- The device registry and metering (weir-device-registry). Versions 200+ belong to it.
CREATE TABLE IF NOT EXISTS device_applications (
    application_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    description TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS device_versions (
    version_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES device_applications (application_id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    event_time_pointer TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS device_endpoints (
    endpoint_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES device_applications (application_id) ON DELETE CASCADE,
    attributes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT
);
CREATE INDEX IF NOT EXISTS device_endpoints_by_application ON device_endpoints (application_id, endpoint_id);

CREATE TABLE IF NOT EXISTS device_endpoint_attributes (
    endpoint_id TEXT NOT NULL REFERENCES device_endpoints (endpoint_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, name)
);
CREATE INDEX IF NOT EXISTS device_attributes_by_value ON device_endpoint_attributes (name, value);

CREATE TABLE IF NOT EXISTS device_tokens (
    token_id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES device_endpoints (endpoint_id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS device_tokens_by_endpoint ON device_tokens (endpoint_id);

CREATE TABLE IF NOT EXISTS device_usage (
    period_start BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    application_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    messages BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    rejections BIGINT NOT NULL,
    PRIMARY KEY (period_start, endpoint_id, dataset_id)
);
CREATE INDEX IF NOT EXISTS device_usage_by_account ON device_usage (account_id, period_start);
CREATE INDEX IF NOT EXISTS device_usage_by_application ON device_usage (application_id, period_start);

CREATE TABLE IF NOT EXISTS device_quotas (
    account_id TEXT PRIMARY KEY,
    period TEXT NOT NULL,
    max_samples BIGINT,
    max_bytes BIGINT,
    updated_at BIGINT NOT NULL
);

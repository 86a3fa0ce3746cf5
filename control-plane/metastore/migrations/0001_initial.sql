CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    display_name TEXT NOT NULL,
    email TEXT,
    password_hash TEXT,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE organization_members (
    organization_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    member_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    PRIMARY KEY (organization_id, member_id)
);

CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_account ON access_tokens(account_id);

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES accounts(id),
    owner_name TEXT NOT NULL,
    name TEXT NOT NULL,
    alias_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    storage_location TEXT NOT NULL,
    visibility TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    head_hash TEXT,
    head_sequence BIGINT
);

CREATE TABLE dataset_roles (
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (dataset_id, account_id)
);

CREATE TABLE metadata_blocks (
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sequence_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    prev_block_hash TEXT,
    system_time BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    key_fields TEXT NOT NULL,
    PRIMARY KEY (dataset_id, sequence_number)
);
CREATE UNIQUE INDEX metadata_blocks_hash ON metadata_blocks(dataset_id, block_hash);
CREATE INDEX metadata_blocks_event_type ON metadata_blocks(dataset_id, event_type, sequence_number);

CREATE TABLE dataset_dependencies (
    downstream_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    upstream_id TEXT NOT NULL,
    PRIMARY KEY (downstream_id, upstream_id)
);
CREATE INDEX dataset_dependencies_upstream ON dataset_dependencies(upstream_id);

CREATE TABLE dataset_statistics (
    dataset_id TEXT PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    num_records BIGINT NOT NULL,
    data_size_bytes BIGINT NOT NULL,
    last_updated BIGINT,
    last_watermark BIGINT
);

CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox(published_at, seq);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

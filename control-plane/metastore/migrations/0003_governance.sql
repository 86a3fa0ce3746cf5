-- Issues and discussions of datasets ("threads"), their threaded comments with edit history,
-- reactions and mentions, and who may post per dataset. Not rebuilt from storage: like
-- accounts and roles, this state lives only here.
CREATE TABLE governance_threads (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    author_id TEXT NOT NULL,
    state TEXT NOT NULL,
    locked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (dataset_id, number)
);
CREATE INDEX governance_threads_state ON governance_threads(dataset_id, kind, state);

CREATE TABLE governance_labels (
    thread_id TEXT NOT NULL REFERENCES governance_threads(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (thread_id, label)
);

CREATE TABLE governance_assignees (
    thread_id TEXT NOT NULL REFERENCES governance_threads(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    PRIMARY KEY (thread_id, account_id)
);

CREATE TABLE governance_comments (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES governance_threads(id) ON DELETE CASCADE,
    parent_id TEXT,
    author_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT,
    hidden BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX governance_comments_thread ON governance_comments(thread_id, created_at);

-- Earlier bodies of edited comments, oldest first.
CREATE TABLE governance_comment_edits (
    comment_id TEXT NOT NULL REFERENCES governance_comments(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    edited_by TEXT NOT NULL,
    replaced_at BIGINT NOT NULL,
    PRIMARY KEY (comment_id, version)
);

CREATE TABLE governance_reactions (
    comment_id TEXT NOT NULL REFERENCES governance_comments(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    reaction TEXT NOT NULL,
    PRIMARY KEY (comment_id, account_id, reaction)
);

CREATE TABLE governance_mentions (
    comment_id TEXT NOT NULL REFERENCES governance_comments(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    PRIMARY KEY (comment_id, account_id)
);

-- Who may open threads and comment on a dataset, when not the default (its readers).
CREATE TABLE governance_settings (
    dataset_id TEXT PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    posting TEXT NOT NULL
);

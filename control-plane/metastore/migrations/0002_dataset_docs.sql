-- What search sees of each dataset's documentation (from its SetInfo, SetLicense and
-- SetAttachments blocks), rebuilt by the indexer like the rest of the index.
CREATE TABLE dataset_docs (
    dataset_id TEXT PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
    description TEXT,
    license TEXT,
    readme TEXT
);
-- `license = 'cc0-1.0'` finds its datasets through this index.
CREATE INDEX dataset_docs_license ON dataset_docs ((lower(COALESCE(license, ''))));

-- Keywords, lowercased: `keywords = 'x'` is one indexed lookup.
CREATE TABLE dataset_keywords (
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    keyword TEXT NOT NULL,
    PRIMARY KEY (dataset_id, keyword)
);
CREATE INDEX dataset_keywords_keyword ON dataset_keywords(keyword, dataset_id);

-- The full-text index: each lowercase word of a dataset's description, keywords and readme.
CREATE TABLE dataset_terms (
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    term TEXT NOT NULL,
    PRIMARY KEY (dataset_id, term)
);
CREATE INDEX dataset_terms_term ON dataset_terms(term, dataset_id);

-- One row per document with the SHA-256 of its content: the RAG index refreshes from this,
-- re-embedding only the documents whose hash changed.
select
    doc_id,
    title,
    line_of_business,
    doc_type,
    path,
    content,
    content_hash,
    access_tags,
    length(content) as chars,
    len(string_split(trim(content), ' ')) as words,
    updated_at
from {{ ref('stg_documents') }}

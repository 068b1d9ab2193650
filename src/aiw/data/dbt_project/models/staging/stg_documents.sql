select
    doc_id,
    title,
    line_of_business,
    doc_type,
    path,
    content,
    content_hash,
    access_tags,
    updated_at::timestamp as updated_at
from {{ source('raw', 'documents') }}

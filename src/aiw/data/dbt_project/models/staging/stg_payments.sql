select
    payment_id::bigint as payment_id,
    claim_id::bigint as claim_id,
    paid_at::timestamp as paid_at,
    amount::double as amount,
    method
from {{ source('raw', 'payments') }}

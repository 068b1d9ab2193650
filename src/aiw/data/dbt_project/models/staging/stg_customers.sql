select
    customer_id::bigint as customer_id,
    first_name,
    last_name,
    email,
    phone,
    birth_date::date as birth_date,
    gender,
    region,
    segment,
    signup_date::date as signup_date,
    credit_score::integer as credit_score,
    updated_at::timestamp as updated_at
from {{ source('raw', 'customers') }}

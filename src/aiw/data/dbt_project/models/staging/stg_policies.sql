select
    policy_id::bigint as policy_id,
    customer_id::bigint as customer_id,
    line_of_business,
    product,
    start_date::date as start_date,
    end_date::date as end_date,
    annual_premium::double as annual_premium,
    deductible::double as deductible,
    coverage_limit::double as coverage_limit,
    status,
    updated_at::timestamp as updated_at
from {{ source('raw', 'policies') }}

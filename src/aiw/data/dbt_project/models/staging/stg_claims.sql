select
    claim_id::bigint as claim_id,
    policy_id::bigint as policy_id,
    customer_id::bigint as customer_id,
    line_of_business,
    claim_type,
    region,
    channel,
    incident_date::date as incident_date,
    reported_at::timestamp as reported_at,
    amount::double as amount,
    status,
    days_to_report::integer as days_to_report,
    prior_claims::integer as prior_claims,
    adjuster_notes,
    is_fraud::boolean as is_fraud,
    updated_at::timestamp as updated_at
from {{ source('raw', 'claims') }}

-- Claim volume and amounts per reporting day and line of business: the series the dashboard
-- trends and forecasts, and the quality gates watch.
with paid as (
    select claim_id, sum(amount) as paid_amount
    from {{ ref('stg_payments') }}
    group by claim_id
)
select
    c.reported_at::date as day,
    c.line_of_business,
    count(*) as claims,
    sum(c.amount) as claimed_amount,
    avg(c.amount) as avg_amount,
    coalesce(sum(p.paid_amount), 0) as paid_amount,
    count(*) filter (where c.is_fraud) as fraud_claims,
    count(*) filter (where c.status in ('open', 'under_review')) as open_claims
from {{ ref('stg_claims') }} as c
left join paid as p using (claim_id)
group by 1, 2

-- One row per customer as of the latest load: profile, policies, claims and payments.
-- A current snapshot for analytics and look-ups; point-in-time features come from
-- customer_features instead.
with pol as (
    select
        customer_id,
        count(*) as policies,
        count(*) filter (where status = 'active') as active_policies,
        sum(annual_premium) as total_premium,
        sum(annual_premium) filter (where status = 'active') as active_premium,
        max(updated_at) as updated_at
    from {{ ref('stg_policies') }}
    group by customer_id
),
paid as (
    select claim_id, sum(amount) as paid_amount
    from {{ ref('stg_payments') }}
    group by claim_id
),
clm as (
    select
        c.customer_id,
        count(*) as claims,
        count(*) filter (where c.status in ('open', 'under_review')) as open_claims,
        count(*) filter (where c.is_fraud) as fraud_claims,
        sum(c.amount) as claimed_amount,
        coalesce(sum(p.paid_amount), 0) as paid_amount,
        min(c.reported_at) as first_claim_at,
        max(c.reported_at) as last_claim_at,
        max(c.updated_at) as updated_at
    from {{ ref('stg_claims') }} as c
    left join paid as p using (claim_id)
    group by c.customer_id
)
select
    cu.customer_id,
    cu.first_name,
    cu.last_name,
    cu.email,
    cu.gender,
    cu.region,
    cu.segment,
    cu.birth_date,
    date_sub('year', cu.birth_date, current_date) as age,
    cu.signup_date,
    date_diff('day', cu.signup_date, current_date) as tenure_days,
    cu.credit_score,
    coalesce(pol.policies, 0) as policies,
    coalesce(pol.active_policies, 0) as active_policies,
    coalesce(pol.total_premium, 0) as total_premium,
    coalesce(pol.active_premium, 0) as active_premium,
    coalesce(clm.claims, 0) as claims,
    coalesce(clm.open_claims, 0) as open_claims,
    coalesce(clm.fraud_claims, 0) as fraud_claims,
    coalesce(clm.claimed_amount, 0) as claimed_amount,
    coalesce(clm.paid_amount, 0) as paid_amount,
    coalesce(clm.paid_amount, 0) / nullif(pol.total_premium, 0) as loss_ratio,
    clm.first_claim_at,
    clm.last_claim_at,
    greatest(cu.updated_at, pol.updated_at, clm.updated_at) as updated_at
from {{ ref('stg_customers') }} as cu
left join pol using (customer_id)
left join clm using (customer_id)

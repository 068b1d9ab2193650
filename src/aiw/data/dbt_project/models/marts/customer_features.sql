-- Customer features through time, for point-in-time correct training sets: one row per customer
-- and moment something changed (signing up, a policy starting, a claim being reported), holding
-- what was known at that moment. A training row at time t gets the newest row at or before t.
-- Fraud outcomes are left out on purpose: they are known long after a claim is reported, so a
-- count of them "as of" the report would leak the label.
with events as (
    select customer_id, signup_date::timestamp as event_timestamp,
           0 as new_policies, 0.0 as new_premium, 0 as new_claims, 0.0 as new_claimed
    from {{ ref('stg_customers') }}
    union all
    select customer_id, start_date::timestamp, 1, annual_premium, 0, 0.0
    from {{ ref('stg_policies') }}
    union all
    select customer_id, reported_at, 0, 0.0, 1, amount
    from {{ ref('stg_claims') }}
),
per_moment as (
    select customer_id, event_timestamp,
           sum(new_policies) as new_policies, sum(new_premium) as new_premium,
           sum(new_claims) as new_claims, sum(new_claimed) as new_claimed
    from events
    group by customer_id, event_timestamp
),
running as (
    select
        customer_id,
        event_timestamp,
        sum(new_policies) over w as policies_to_date,
        sum(new_premium) over w as premium_to_date,
        sum(new_claims) over w as claims_to_date,
        sum(new_claimed) over w as claimed_amount_to_date
    from per_moment
    window w as (partition by customer_id order by event_timestamp
                 rows between unbounded preceding and current row)
)
select
    r.customer_id,
    r.event_timestamp,
    cu.region,
    cu.segment,
    cu.credit_score,
    date_sub('year', cu.birth_date, r.event_timestamp::date) as age,
    date_diff('day', cu.signup_date, r.event_timestamp::date) as tenure_days,
    r.policies_to_date::integer as policies_to_date,
    r.premium_to_date,
    r.claims_to_date::integer as claims_to_date,
    r.claimed_amount_to_date
from running as r
join {{ ref('stg_customers') }} as cu using (customer_id)

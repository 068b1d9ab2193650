-- What the fraud model trains on: one row per claim, every feature as known when the claim was
-- reported (event_timestamp), the label is_fraud, and gender kept only as a sensitive attribute
-- for fairness reports (never a model input). Column for column a superset of
-- aiw.mlops.training.CLAIM_FEATURES_SQL, which trains from this mart when it exists; premium and
-- amount_to_limit are the platform's names for annual_premium and amount_to_coverage.
select
    c.claim_id,
    c.customer_id,
    c.policy_id,
    c.reported_at as event_timestamp,
    c.incident_date,
    c.line_of_business,
    c.claim_type,
    c.region,
    c.channel,
    cu.segment,
    c.amount,
    c.days_to_report,
    c.prior_claims,
    p.annual_premium,
    p.annual_premium as premium,
    p.deductible,
    p.coverage_limit,
    c.amount / nullif(p.annual_premium, 0) as amount_to_premium,
    c.amount / nullif(p.coverage_limit, 0) as amount_to_coverage,
    c.amount / nullif(p.coverage_limit, 0) as amount_to_limit,
    date_diff('day', p.start_date, c.incident_date) as policy_age_days,
    cu.credit_score,
    floor(date_diff('day', cu.birth_date, c.incident_date) / 365.25)::integer as customer_age,
    date_diff('day', cu.signup_date, c.incident_date) as customer_tenure_days,
    cu.gender,
    c.is_fraud
from {{ ref('stg_claims') }} as c
join {{ ref('stg_policies') }} as p using (policy_id)
join {{ ref('stg_customers') }} as cu on cu.customer_id = c.customer_id

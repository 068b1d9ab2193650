{#- No row shares its values of every column in combination_of_columns with another row.
    (The same test as dbt_utils', kept here because the project installs no packages.) -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

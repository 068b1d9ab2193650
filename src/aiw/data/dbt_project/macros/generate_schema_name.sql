{#- Models land in the schema they name (staging, marts), not "<target>_<name>": the platform
    and analysts query marts.claims_daily whatever the target is called. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

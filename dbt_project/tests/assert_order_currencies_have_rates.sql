-- Every order currency needs a rate in the currency_rates seed: otherwise its revenue
-- would silently drop out of (or be mis-summed into) dim_customers.revenue.
select
    coalesce(orders.currency, '{{ var("reporting_currency") }}') as currency,
    count(*) as orders
from {{ ref('stg_shop__orders') }} as orders
left join {{ ref('currency_rates') }} as rates
    on rates.currency = coalesce(orders.currency, '{{ var("reporting_currency") }}')
where rates.currency is null
group by 1

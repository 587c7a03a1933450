"""What monitoring systems read: the Nagios/Icinga plugin contract (`nagios`: status line,
perfdata, threshold ranges, exit states) and the Prometheus text exposition (`prometheus`, built
with prometheus-client, and the small HTTP server `metrics --serve` runs). Nothing here speaks to a
relay: the operations (`ops/check.py`, `ops/metrics.py`) measure, these modules only format."""

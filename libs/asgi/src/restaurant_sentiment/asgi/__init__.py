"""Plain-ASGI middleware shared by the services: HTTP metrics and the access log."""

from restaurant_sentiment.asgi.metrics import HttpMetrics, configure_access_log, metrics_endpoint

__all__ = ["HttpMetrics", "configure_access_log", "metrics_endpoint"]

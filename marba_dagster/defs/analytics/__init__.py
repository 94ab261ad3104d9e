"""analytics_collector: platform metrics and derived brand metrics (daily partitions)."""

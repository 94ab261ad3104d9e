"""engagement_collector: the engagement inbox with sentiment and priority (hourly partitions)."""

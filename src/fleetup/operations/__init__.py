"""Operations (charts 4 and 6): problems, monitoring, incidents, the data-anomaly runbook."""

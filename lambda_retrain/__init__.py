"""The closed loop: alarm -> retrain on recent labelled rides -> gate -> promote (or rollback), audited."""

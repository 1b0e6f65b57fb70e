"""The actuals function: actual durations from the actuals stream, checked, into the capture bucket."""

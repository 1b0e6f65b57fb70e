"""The monitor's logic: drift statistics, quality, metrics, report; AWS behind small ports."""

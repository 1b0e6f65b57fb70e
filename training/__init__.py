"""Training job: load TLC months, fit the model, export the serving bundle, track, gate and publish."""

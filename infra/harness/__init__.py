"""The harness the demos, the load test and the e2e tests share: rides, streams, the deployed stack,
polling, MLflow's registry, starting the local services. Scripts are scenarios over it."""

# `sam build` (BuildMethod: makefile) runs `make build-<LogicalId>` with ARTIFACTS_DIR set, using the
# Makefile of the function's CodeUri folder, which includes this file. Every function is built by the
# same rule (infra/build_function.sh) from the one source tree: trip_core + the packages listed here.
FUNCTION_BUILD := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))/build_function.sh

build-PredictFunction:
	$(FUNCTION_BUILD) "$(ARTIFACTS_DIR)" lambda_predict

build-PredictRideFunction:
	$(FUNCTION_BUILD) "$(ARTIFACTS_DIR)" lambda_predict

build-MonitorFunction:
	$(FUNCTION_BUILD) "$(ARTIFACTS_DIR)" lambda_monitor

build-ActualsFunction:
	$(FUNCTION_BUILD) "$(ARTIFACTS_DIR)" lambda_actuals

build-RetrainFunction:
	$(FUNCTION_BUILD) "$(ARTIFACTS_DIR)" training lambda_retrain

.PHONY: build-PredictFunction build-PredictRideFunction build-MonitorFunction build-ActualsFunction build-RetrainFunction

"""Entry point `local` in group `localstack.lambda.runtime_executor` (LAMBDA_RUNTIME_EXECUTOR=local)."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class LocalRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "local"

    def load(self, *args, **kwargs):
        from localstack_local_executor.executor import LocalRuntimeExecutor

        return LocalRuntimeExecutor

"""SageMaker training jobs, as far as the api acts on them."""

from __future__ import annotations

from botocore.exceptions import ClientError

from lambdas.common.dal.aws import client, error_code, raise_common


class Training:
    # Answers meaning "nothing (left) to stop": the job has not been created yet or has ended.
    _NOTHING_TO_STOP = frozenset({"ValidationException", "ResourceNotFound", "ResourceNotFoundException"})

    def stop(self, training_job_name: str) -> bool:
        """Asks SageMaker to stop the job; False when there was nothing running to stop."""
        try:
            client("sagemaker").stop_training_job(TrainingJobName=training_job_name)
        except ClientError as e:
            if error_code(e) in self._NOTHING_TO_STOP:
                return False
            raise_common(e)
        return True

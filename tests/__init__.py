"""The test suite (a regular package: an installed distribution may ship a top-level `tests`,
as smdebug_rulesconfig, a SageMaker SDK dependency, does, and would shadow a namespace one)."""

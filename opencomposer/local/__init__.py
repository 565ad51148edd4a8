"""The local stack: the whole pipeline on one machine, on moto, with no AWS account and no Docker.

It runs this checkout's own handlers (`lambdas/`), state machine (`statemachine/`) and training
package (`training_container/gan`), installed with the project (`pip install -e .`).
"""

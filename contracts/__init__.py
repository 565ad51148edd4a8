"""The contracts: every fact that more than one part of opencomposer must agree on, in one place.

Plain data and small functions on the standard library only, so the api Lambda, the training
container, the CDK app, the local stack and the client all import it for free (no AWS SDK, no
torch, no pydantic). Each consumer derives what it needs from here; `tests/contracts/` fail when
one disagrees. One exception: `midi` imports mido (every place that reads a melody installs it;
nothing else imports that module).

- `routes`: the HTTP API's routes (method, path, what it does).
- `statuses`: a job's statuses, who moves a job between them, which are final.
- `hyperparameters`: what a training job may set: names, types, ranges, defaults, help.
- `instruments`: the General MIDI program and track name of each voice, named presets.
- `names`: the rules of identifiers (job id, job name, idempotency key, training job name) and of
  the state machine's `${Placeholder}` text.
- `owners`: who owns a job: the caller's IAM identity, an assumed role's session dropped.
- `timestamps`: the API's one timestamp form.
- `storage`: the jobs table's keys and items, its stream filter, the artifacts bucket's layout.
- `functions`: the Lambda functions (handler, runtime, memory, timeout, environment) as both the
  CDK stack and the local stack declare them.
- `training`: the training container's side of the contract (its environment, its channel).
- `events`: the events AWS hands a function (API Gateway proxy event, DynamoDB stream record).
- `deployment`: where the API is: the stack's outputs, the local stack's fixed identity and port.
- `midi`: the one reading of a melody MIDI file: its rules, for the API's check and the training.
"""

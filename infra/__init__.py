"""The CDK app that deploys opencomposer to an AWS account (`infra/app.py`)."""

"""One construct per concern of the stack: API, jobs table, stream trigger, workflow, training,
artifacts bucket (named `components` so that running `python infra/app.py`, which puts
`infra/` first on the import path, cannot shadow the `constructs` library)."""

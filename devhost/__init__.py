"""A local Azure Functions host for `function_app`: the real host's trigger semantics, without Core Tools.

Core Tools cannot be installed offline, so this package loads the same app object, serves its ASGI app with
uvicorn and dispatches blob, queue and timer triggers the way the Functions host does (receipts, retries,
poison queues, NCRONTAB schedules). `python -m devhost --help` lists the options.

The package itself imports nothing, so a light module of it (`devhost.azurite`, `devhost.ports`) does not pull in
the host and its HTTP server: the training-core bench runs on a GPU machine that has no uvicorn.
"""

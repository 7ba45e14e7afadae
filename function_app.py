"""The Azure Functions app: bindings only. Each trigger hands off to `pipeline` in a line or two."""

import azure.functions as func

from pipeline import triggers
from pipeline.api.app import create_app

app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("ingest_upload")
@app.blob_trigger(
    arg_name="upload", path="uploads/{name}", connection="SEER_DATA", source=func.BlobSource.EVENT_GRID
)
def ingest_upload(upload: func.InputStream) -> None:
    """A file dropped at uploads/{project}/{tag}/{file} becomes a tagged training image. Event Grid delivers each
    new blob (Flex Consumption runs no polling blob trigger); SEER_DATA is Seer's data account, not the host's."""
    triggers.ingest_upload(upload.name, upload.read())


@app.function_name("retrain_on_schedule")
@app.timer_trigger(arg_name="timer", schedule="0 0 * * * *", run_on_startup=False, use_monitor=False)
def retrain_on_schedule(timer: func.TimerRequest) -> None:
    """Every hour (NCRONTAB, UTC): retrain projects that gained enough newly labelled images."""
    triggers.retrain_on_schedule()


@app.function_name("sweep_orphans")
@app.timer_trigger(arg_name="timer", schedule="0 */15 * * * *", run_on_startup=False, use_monitor=False)
def sweep_orphans(timer: func.TimerRequest) -> None:
    """Every 15 minutes: remove blobs, claims and projects that interrupted uploads and deletions left behind."""
    triggers.sweep_orphans()

"""`python -m training_job.exports`: take one message from the exports queue, export, exit (a Container Apps Job
run)."""

import sys

from training_job.exports.job import main

sys.exit(main())

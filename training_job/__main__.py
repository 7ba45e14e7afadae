"""`python -m training_job`: take one message from the training queue, train, exit (a Container Apps Job run)."""

import sys

from training_job.job import main

sys.exit(main())
